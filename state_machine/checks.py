"""Checks a parsed flow before any call runs it: targets that do not exist, states that
cannot be reached, states with no way out or no way to an end, slots spoken before they are
collected, and settings that contradict each other."""

from __future__ import annotations

import string
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from state_machine.errors import FlowError
from state_machine.loader import read_flow
from state_machine.model import Flow, State

# Placeholders the service fills from the call's context, not from slots.
PROVIDED_CONTEXT = frozenset({"business"})


@dataclass(frozen=True, slots=True)
class Problem:
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


def placeholders(text: str | None) -> set[str]:
    if not text:
        return set()
    try:
        return {name for _, name, _, _ in string.Formatter().parse(text) if name}
    except ValueError:
        return {"{"}  # unbalanced braces: reported by the caller


def edges(flow: Flow, state: State) -> list[tuple[str, str]]:
    """(field, target) for every way out, the flow-wide `on` included."""
    out = state.targets()
    if not state.ends_call:
        out += [(f"flow on.{intent}", target) for intent, target in flow.on.items()]
    return out


def _where(flow: Flow, state: str, field: str = "") -> str:
    return f"{flow.source}: state {state}" + (f".{field}" if field else "")


def _unknown_targets(flow: Flow) -> list[Problem]:
    problems = []
    if flow.start not in flow.states:
        problems.append(Problem(f"{flow.source}: start", f"unknown state {flow.start!r}"))
    for intent, target in flow.on.items():
        if target not in flow.states:
            problems.append(Problem(f"{flow.source}: on.{intent}", f"unknown state {target!r}"))
    for state in flow.states.values():
        for field, target in state.targets():
            if target not in flow.states:
                problems.append(
                    Problem(_where(flow, state.name, field), f"unknown state {target!r}")
                )
    return problems


def _reachable(flow: Flow) -> set[str]:
    seen = {flow.start}
    queue = deque([flow.start])
    while queue:
        for _, target in edges(flow, flow.states[queue.popleft()]):
            if target in flow.states and target not in seen:
                seen.add(target)
                queue.append(target)
    return seen


def _can_end(flow: Flow) -> set[str]:
    """States from which some path reaches a state that ends the call."""
    ending = {n for n, s in flow.states.items() if s.ends_call}
    changed = True
    while changed:
        changed = False
        for name, state in flow.states.items():
            if name not in ending and any(t in ending for _, t in edges(flow, state)):
                ending.add(name)
                changed = True
    return ending


def _slots_known_on_entry(flow: Flow) -> dict[str, set[str]]:
    """For each reachable state, the slots filled on every path that reaches it. A slot is
    filled only along its collecting state's `next` edge."""
    every = flow.slots()
    known = {name: set(every) for name in flow.states}
    known[flow.start] = set()
    changed = True
    while changed:
        changed = False
        incoming: dict[str, list[set[str]]] = {name: [] for name in flow.states}
        for state in flow.states.values():
            for field, target in edges(flow, state):
                if target not in flow.states:
                    continue
                carried = set(known[state.name])
                if field == "next" and state.collect is not None:
                    carried.add(state.collect.slot)
                incoming[target].append(carried)
        for name, sets in incoming.items():
            if name == flow.start:
                new = set()
            elif sets:
                new = set.intersection(*sets)
            else:
                continue
            if new != known[name]:
                known[name] = new
                changed = True
    return known


def _state_rules(flow: Flow, state: State) -> list[Problem]:
    problems = []
    where = _where(flow, state.name)
    if state.collect is not None and state.task is not None:
        problems.append(Problem(where, "a state either collects a slot or answers a task"))
    if state.collect is not None and state.next is None:
        problems.append(Problem(where, "a state that collects a slot needs next"))
    if state.ends_call and state.targets():
        problems.append(
            Problem(where, "a state whose action ends the call cannot have transitions")
        )
    budgets = state.budgets.over(flow.defaults.budgets)
    if (
        budgets.first_token_budget_s is not None
        and budgets.llm_timeout_s is not None
        and budgets.first_token_budget_s >= budgets.llm_timeout_s
    ):
        problems.append(Problem(where, "first_token_budget_s must be below llm_timeout_s"))
    for field in ("say", "reprompt"):
        if "{" in placeholders(getattr(state, field)):
            problems.append(Problem(_where(flow, state.name, field), "unbalanced { or }"))
    return problems


def check_flow(flow: Flow, provided: frozenset[str] = PROVIDED_CONTEXT) -> list[Problem]:
    """Every problem found, in a stable order; an empty list means the flow is sound."""
    problems = _unknown_targets(flow)
    if problems:
        return problems  # the graph checks below need every target to exist
    reachable = _reachable(flow)
    for name in flow.states:
        if name not in reachable:
            problems.append(Problem(_where(flow, name), f"unreachable from start {flow.start!r}"))
    can_end = _can_end(flow)
    for name, state in flow.states.items():
        problems.extend(_state_rules(flow, state))
        if name not in reachable:
            continue
        if not state.ends_call and not edges(flow, state):
            problems.append(Problem(_where(flow, name), "no way out: no transition or action"))
        elif name not in can_end:
            problems.append(
                Problem(_where(flow, name), "no path from here reaches a state that ends the call")
            )
    known = _slots_known_on_entry(flow)
    slots = flow.slots()
    context = provided | set(flow.context)
    for name, state in flow.states.items():
        if name not in reachable:
            continue
        for field in ("say", "reprompt"):
            for placeholder in sorted(placeholders(getattr(state, field)) - {"{"}):
                if placeholder in slots:
                    if placeholder not in known[name]:
                        problems.append(
                            Problem(
                                _where(flow, name, field),
                                f"slot {placeholder!r} is used before it is collected "
                                "on every path to this state",
                            )
                        )
                elif placeholder not in context:
                    problems.append(
                        Problem(
                            _where(flow, name, field),
                            f"{{{placeholder}}} is neither a slot nor in the flow's context",
                        )
                    )
    return problems


def load_flow(path: Path, provided: frozenset[str] = PROVIDED_CONTEXT) -> Flow:
    """Read and check a flow file; raises FlowError listing every problem."""
    flow = read_flow(path)
    problems = check_flow(flow, provided)
    if problems:
        raise FlowError(
            f"{len(problems)} problem(s):\n" + "\n".join(f"  {p}" for p in problems), str(path)
        )
    return flow
