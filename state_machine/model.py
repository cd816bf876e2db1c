"""A flow as data: immutable, validated on load, never changed by a call."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

SlotKind = Literal["digits", "text", "choice"]
ActionName = Literal["transfer", "hangup", "dtmf"]
Tier = Literal["quick", "cache", "knowledge"]
ALL_TIERS: tuple[Tier, ...] = ("quick", "cache", "knowledge")


@dataclass(frozen=True, slots=True)
class Budgets:
    """Per-state limits for the LLM; None means the service's default."""

    first_token_budget_s: float | None = None
    llm_timeout_s: float | None = None
    stall_timeout_s: float | None = None

    def over(self, base: Budgets) -> Budgets:
        """These values where set, `base` elsewhere."""
        return Budgets(
            self.first_token_budget_s
            if self.first_token_budget_s is not None
            else base.first_token_budget_s,
            self.llm_timeout_s if self.llm_timeout_s is not None else base.llm_timeout_s,
            self.stall_timeout_s if self.stall_timeout_s is not None else base.stall_timeout_s,
        )


@dataclass(frozen=True, slots=True)
class Collect:
    slot: str
    kind: SlotKind = "digits"
    min_len: int = 1
    max_len: int = 32
    options: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Action:
    name: ActionName
    value: str | None = None  # transfer: the number; dtmf: the digits

    @property
    def ends_call(self) -> bool:
        return self.name in ("transfer", "hangup")


@dataclass(frozen=True, slots=True)
class State:
    name: str
    say: str | None = None
    task: str | None = None
    on: dict[str, str] = field(default_factory=dict)
    otherwise: str | None = None
    next: str | None = None
    collect: Collect | None = None
    action: Action | None = None
    reprompt: str | None = None
    max_reprompts: int = 2
    on_fail: str | None = None
    silence_timeout_s: float | None = None
    cacheable: bool | None = None
    budgets: Budgets = field(default_factory=Budgets)
    tiers: tuple[Tier, ...] | None = None
    quick_intents: tuple[str, ...] | None = None  # small talk templates may answer; None: all

    @property
    def ends_call(self) -> bool:
        return self.action is not None and self.action.ends_call

    def targets(self) -> list[tuple[str, str]]:
        """(field, target state) for every way out of this state."""
        out = [(f"on.{intent}", target) for intent, target in self.on.items()]
        for name in ("otherwise", "next", "on_fail"):
            target = getattr(self, name)
            if target is not None:
                out.append((name, target))
        return out


@dataclass(frozen=True, slots=True)
class Defaults:
    budgets: Budgets = field(default_factory=Budgets)
    cacheable: bool = True
    silence_timeout_s: float = 10.0
    max_reprompts: int = 2
    reminder: str = "Are you still there?"


@dataclass(frozen=True, slots=True)
class Flow:
    name: str
    start: str
    states: dict[str, State]
    defaults: Defaults = Defaults()
    on: dict[str, str] = field(default_factory=dict)  # transitions that apply in every state
    context: dict[str, str] = field(default_factory=dict)  # values for placeholders like {business}
    intents: dict[str, tuple[str, ...]] = field(default_factory=dict)  # the flow's own examples
    source: str = "<flow>"

    def slots(self) -> set[str]:
        return {s.collect.slot for s in self.states.values() if s.collect is not None}
