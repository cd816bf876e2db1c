"""Draws a flow as a Mermaid state diagram."""

from __future__ import annotations

from state_machine.model import Flow


def _label(text: str) -> str:
    return text.replace(":", " ").replace('"', "'")


def mermaid(flow: Flow) -> str:
    lines = ["stateDiagram-v2", f"    [*] --> {flow.start}"]
    for name, state in flow.states.items():
        for field, target in state.targets():
            label = field.removeprefix("on.")
            lines.append(f"    {name} --> {target}: {_label(label)}")
        if state.collect is not None:
            lines.append(f"    {name}: {name} (collects {state.collect.slot})")
        elif state.task is not None:
            lines.append(f"    {name}: {name} (answers)")
        if state.action is not None and state.action.ends_call:
            detail = f" {state.action.value}" if state.action.value else ""
            lines.append(f"    {name} --> [*]: {state.action.name}{_label(detail)}")
    if flow.on:
        lines.append('    state "any state" as any_state')
        for intent, target in flow.on.items():
            lines.append(f"    any_state --> {target}: {intent}")
    return "\n".join(lines) + "\n"
