"""The flows a service can run: read and checked at start-up from VOICE_AGENT_FLOW_PATH (one
file, or a folder of them), chosen per call by `call.start`'s `flow` or the default."""

from __future__ import annotations

from pathlib import Path

from state_machine import Flow, FlowError, load_flow
from voice_agent.errors import ConfigError

FLOW_SUFFIXES = (".yaml", ".yml")


def flow_files(path: Path) -> list[Path]:
    """`path` itself, or the flow files in it when it is a folder."""
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.suffix in FLOW_SUFFIXES)
    return [path]


class FlowLibrary:
    def __init__(self, flows: dict[str, Flow], default: str) -> None:
        if default not in flows:
            known = ", ".join(sorted(flows)) or "none"
            raise ConfigError(f"VOICE_AGENT_DEFAULT_FLOW: no flow named {default!r} ({known})")
        self.flows = flows
        self.default = default

    @classmethod
    def load(cls, path: Path, default: str) -> FlowLibrary:
        flows: dict[str, Flow] = {}
        for file in flow_files(path):
            try:
                flow = load_flow(file)
            except FlowError as exc:
                raise ConfigError(f"VOICE_AGENT_FLOW_PATH: {exc}") from exc
            if flow.name in flows:
                raise ConfigError(f"VOICE_AGENT_FLOW_PATH: two flows are named {flow.name!r}")
            flows[flow.name] = flow
        if path.is_file():
            default = next(iter(flows))
        return cls(flows, default)

    def get(self, name: str | None) -> Flow | None:
        return self.flows.get(name or self.default)

    def own_intents(self) -> dict[str, list[str]]:
        """Example phrases that flows declare for their own intents."""
        out: dict[str, list[str]] = {}
        for flow in self.flows.values():
            for intent, examples in flow.intents.items():
                out.setdefault(intent, []).extend(examples)
        return out
