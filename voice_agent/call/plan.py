"""A turn's plan: the call's mode, the budgets and the tiers allowed to serve or to be asked in
shadow, decided once per turn from the flow's decision and one snapshot of the run-time flags.
Pure; a flag change applies from the next turn of every call, and never half-way through one."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import state_machine as sm
from voice_agent.flags import Flags
from voice_agent.types import Budgets

FAST_TIERS = ("quick", "cache")


@dataclass(frozen=True, slots=True)
class TurnDefaults:
    """What a call uses without run-time flags: the configured mode and the service's budgets."""

    mode: str
    budgets: Budgets


@dataclass(frozen=True, slots=True)
class TurnPlan:
    mode: str  # disabled, shadow or enabled, for this call now
    budgets: Budgets
    tiers: tuple[str, ...]  # allowed to answer, in the state's order
    shadow_tiers: tuple[str, ...] = ()  # shadow mode: the fast tiers asked what they would say


def call_mode(flags: Flags | None, defaults: TurnDefaults, call_id: str) -> str:
    """The call's mode: the flags' (with the canary percent), else the configured one."""
    return defaults.mode if flags is None else flags.mode_for(call_id)


def turn_budgets(decision: sm.Decision, flags: Flags | None, defaults: Budgets) -> Budgets:
    """The state's own budgets, over the flags' (or the service's) defaults."""
    if flags is not None:
        defaults = Budgets(flags.first_token_budget_s, defaults.stall_s, flags.llm_timeout_s)
    own = decision.budgets
    return Budgets(
        first_token_s=own.first_token_budget_s or defaults.first_token_s,
        stall_s=own.stall_timeout_s or defaults.stall_s,
        total_s=own.llm_timeout_s or defaults.total_s,
    )


def switched_off(flags: Flags | None) -> set[str]:
    off = set()
    if flags is not None:
        if not flags.quick_responses:
            off.add("quick")
        if not flags.response_cache:
            off.add("cache")
    return off


def plan_turn(
    decision: sm.Decision, flags: Flags | None, defaults: TurnDefaults, call_id: str
) -> TurnPlan:
    """The state's tiers, less the fast ones when the optimizations are not serving (disabled or
    shadow mode) or are switched off; in shadow mode, the fast ones to ask beside."""
    mode = call_mode(flags, defaults, call_id)
    off = switched_off(flags)
    serving_off = off if mode == "enabled" else off | set(FAST_TIERS)
    shadow = mode == "shadow"
    return TurnPlan(
        mode=mode,
        budgets=turn_budgets(decision, flags, defaults.budgets),
        tiers=tuple(t for t in decision.tiers if t not in serving_off),
        shadow_tiers=tuple(
            t for t in decision.tiers if shadow and t in FAST_TIERS and t not in off
        ),
    )


BUDGET_FLAGS = ("first_token_budget_s", "llm_timeout_s")


def overridden_by_flows(flows: Iterable[sm.Flow], flag: str) -> tuple[list[str], int]:
    """For a budget flag: the answering states (`flow.state`) whose own value, the state's or
    its flow's defaults', wins over the flag; and how many answering states there are."""
    own, answering = [], 0
    for flow in flows:
        for name, state in flow.states.items():
            if state.task is None:
                continue
            answering += 1
            if getattr(state.budgets.over(flow.defaults.budgets), flag) is not None:
                own.append(f"{flow.name}.{name}")
    return own, answering
