"""Reads a flow from YAML into the model, with errors that name the file, the state and the
field. Semantic checks (reachability, slots) are in `checks.py`; `load_flow` runs both."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from state_machine.errors import FlowError
from state_machine.model import (
    ALL_TIERS,
    Action,
    Budgets,
    Collect,
    Defaults,
    Flow,
    State,
)


class YamlLoader(yaml.SafeLoader):
    """YAML 1.1 reads on/off/yes/no as booleans, which would turn the `on:` key of a state
    into True (and a caller's "yes" in a scenario file into a boolean); flows only know true
    and false."""


YamlLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
YamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)

NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
BUDGET_FIELDS = ("first_token_budget_s", "llm_timeout_s", "stall_timeout_s")
STATE_FIELDS = {
    "say", "task", "on", "otherwise", "next", "collect", "action", "reprompt", "max_reprompts",
    "on_fail", "silence_timeout_s", "cacheable", "tiers", "quick_intents", *BUDGET_FIELDS,
}  # fmt: skip
FLOW_FIELDS = {"name", "start", "defaults", "states", "on", "context", "intents"}
DEFAULT_FIELDS = {"cacheable", "silence_timeout_s", "max_reprompts", "reminder", *BUDGET_FIELDS}


class _Reader:
    """Typed reads from a mapping, each failure naming where it happened."""

    def __init__(self, data: Any, where: str) -> None:
        if not isinstance(data, dict):
            raise FlowError(f"expected a mapping, got {type(data).__name__}", where)
        self.data = data
        self.where = where

    def at(self, key: str) -> str:
        return f"{self.where}.{key}"

    def refuse_unknown(self, known: set[str]) -> None:
        unknown = sorted(str(k) for k in self.data if k not in known)
        if unknown:
            raise FlowError(
                f"unknown field(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}",
                self.where,
            )

    def text(self, key: str, required: bool = False) -> str | None:
        value = self.data.get(key)
        if value is None:
            if required:
                raise FlowError("is required", self.at(key))
            return None
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise FlowError(f"must be text, got {type(value).__name__}", self.at(key))
        text = str(value).strip()
        if required and not text:
            raise FlowError("must not be empty", self.at(key))
        return text

    def number(self, key: str, positive: bool = True) -> float | None:
        value = self.data.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise FlowError(f"must be a number, got {value!r}", self.at(key))
        if positive and value <= 0:
            raise FlowError(f"must be above 0, got {value}", self.at(key))
        return float(value)

    def count(self, key: str, default: int) -> int:
        value = self.data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise FlowError(f"must be a whole number of 0 or more, got {value!r}", self.at(key))
        return value

    def flag(self, key: str) -> bool | None:
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, bool):
            raise FlowError(f"must be true or false, got {value!r}", self.at(key))
        return value

    def name(self, key: str) -> str | None:
        value = self.text(key)
        if value is not None and not NAME.match(value):
            raise FlowError(f"{value!r} is not a state name", self.at(key))
        return value

    def transitions(self, key: str) -> dict[str, str]:
        raw = self.data.get(key)
        if raw is None:
            return {}
        table = _Reader(raw, self.at(key))
        out = {}
        for intent in table.data:
            if not isinstance(intent, str) or not NAME.match(intent):
                raise FlowError(f"{intent!r} is not an intent name", table.where)
            target = table.name(intent)
            if target is None:
                raise FlowError("needs a target state", table.at(intent))
            out[intent] = target
        return out

    def budgets(self) -> Budgets:
        return Budgets(*(self.number(field) for field in BUDGET_FIELDS))


def _collect(raw: Any, where: str) -> Collect:
    r = _Reader(raw, where)
    r.refuse_unknown({"slot", "kind", "min_len", "max_len", "options"})
    slot = r.name("slot")
    if slot is None:
        raise FlowError("is required", r.at("slot"))
    kind = r.text("kind") or "digits"
    if kind not in ("digits", "text", "choice"):
        raise FlowError(f"must be digits, text or choice, got {kind!r}", r.at("kind"))
    min_len, max_len = r.count("min_len", 1), r.count("max_len", 32)
    if not 1 <= min_len <= max_len:
        raise FlowError(f"needs 1 <= min_len <= max_len, got {min_len}..{max_len}", where)
    options_raw = r.data.get("options", [])
    if not isinstance(options_raw, list) or not all(isinstance(o, str) for o in options_raw):
        raise FlowError("must be a list of text", r.at("options"))
    if kind == "choice" and not options_raw:
        raise FlowError("a choice needs options", r.at("options"))
    return Collect(slot, kind, min_len, max_len, tuple(o.strip() for o in options_raw))  # type: ignore[arg-type]


def _action(raw: Any, where: str) -> Action:
    if raw == "hangup":
        return Action("hangup")
    if isinstance(raw, dict) and len(raw) == 1:
        name, value = next(iter(raw.items()))
        if name in ("transfer", "dtmf") and isinstance(value, str | int) and str(value).strip():
            return Action(name, str(value).strip())
    raise FlowError(f"must be hangup, {{transfer: NUMBER}} or {{dtmf: DIGITS}}, got {raw!r}", where)


def _state(name: str, raw: Any, where: str) -> State:
    r = _Reader(raw, where)
    r.refuse_unknown(STATE_FIELDS)
    tiers_raw = r.data.get("tiers")
    tiers = None
    if tiers_raw is not None:
        if not isinstance(tiers_raw, list) or not set(tiers_raw) <= set(ALL_TIERS):
            raise FlowError(f"must be a list of {', '.join(ALL_TIERS)}", r.at("tiers"))
        tiers = tuple(tiers_raw)
    quick_raw = r.data.get("quick_intents")
    quick_intents = None
    if quick_raw is not None:
        if not isinstance(quick_raw, list) or not all(
            isinstance(i, str) and NAME.match(i) for i in quick_raw
        ):
            raise FlowError("must be a list of intent names", r.at("quick_intents"))
        quick_intents = tuple(quick_raw)
    return State(
        name=name,
        say=r.text("say"),
        task=r.text("task"),
        on=r.transitions("on"),
        otherwise=r.name("otherwise"),
        next=r.name("next"),
        collect=_collect(r.data["collect"], r.at("collect")) if "collect" in r.data else None,
        action=_action(r.data["action"], r.at("action")) if "action" in r.data else None,
        reprompt=r.text("reprompt"),
        max_reprompts=r.count("max_reprompts", -1) if "max_reprompts" in r.data else -1,
        on_fail=r.name("on_fail"),
        silence_timeout_s=r.number("silence_timeout_s"),
        cacheable=r.flag("cacheable"),
        budgets=r.budgets(),
        tiers=tiers,
        quick_intents=quick_intents,
    )


def _defaults(raw: Any, where: str) -> Defaults:
    if raw is None:
        return Defaults()
    r = _Reader(raw, where)
    r.refuse_unknown(DEFAULT_FIELDS)
    base = Defaults()
    cacheable = r.flag("cacheable")
    return Defaults(
        budgets=r.budgets(),
        cacheable=base.cacheable if cacheable is None else cacheable,
        silence_timeout_s=r.number("silence_timeout_s") or base.silence_timeout_s,
        max_reprompts=r.count("max_reprompts", base.max_reprompts),
        reminder=r.text("reminder") or base.reminder,
    )


def _intents(raw: Any, where: str) -> dict[str, tuple[str, ...]]:
    if raw is None:
        return {}
    r = _Reader(raw, where)
    out = {}
    for intent, examples in r.data.items():
        if not isinstance(intent, str) or not NAME.match(intent):
            raise FlowError(f"{intent!r} is not an intent name", where)
        if (
            not isinstance(examples, list)
            or not examples
            or not all(isinstance(e, str) and e.strip() for e in examples)
        ):
            raise FlowError("must be a non-empty list of example phrases", r.at(intent))
        out[intent] = tuple(e.strip() for e in examples)
    return out


def parse_flow(data: Any, source: str = "<flow>") -> Flow:
    """Build a Flow from parsed YAML; raises FlowError at the first malformed field."""
    r = _Reader(data, source)
    r.refuse_unknown(FLOW_FIELDS)
    name = r.text("name", required=True)
    start = r.name("start")
    if start is None:
        raise FlowError("is required", r.at("start"))
    states_raw = _Reader(r.data.get("states"), r.at("states"))
    if not states_raw.data:
        raise FlowError("a flow needs at least one state", states_raw.where)
    states = {}
    for state_name, raw in states_raw.data.items():
        if not isinstance(state_name, str) or not NAME.match(state_name):
            raise FlowError(f"{state_name!r} is not a state name", states_raw.where)
        states[state_name] = _state(state_name, raw, f"{source}: state {state_name}")
    context = r.data.get("context") or {}
    if not isinstance(context, dict):
        raise FlowError("must be a mapping of names to text", r.at("context"))
    defaults = _defaults(r.data.get("defaults"), r.at("defaults"))
    states = {
        n: s if s.max_reprompts >= 0 else _with_reprompts(s, defaults.max_reprompts)
        for n, s in states.items()
    }
    return Flow(
        name=name or "",
        start=start,
        states=states,
        defaults=defaults,
        on=r.transitions("on"),
        context={str(k): str(v) for k, v in context.items()},
        intents=_intents(r.data.get("intents"), r.at("intents")),
        source=source,
    )


def _with_reprompts(state: State, count: int) -> State:
    return replace(state, max_reprompts=count)


def read_flow(path: Path) -> Flow:
    """Parse a flow file (no semantic checks)."""
    try:
        # YamlLoader is a SafeLoader: no Python objects can be built from a flow file.
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=YamlLoader)
    except OSError as exc:
        raise FlowError(f"cannot read: {exc.strerror}", str(path)) from exc
    except yaml.YAMLError as exc:
        raise FlowError(f"not valid YAML: {exc}", str(path)) from exc
    return parse_flow(data, str(path))
