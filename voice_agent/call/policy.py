"""What a turn may use, decided from the run-time flags and the flow's decision: the call's
mode, its budgets and the tiers allowed to answer. Pure functions; the call session asks them
on every turn, so a flag change applies from the next turn of every call."""

from __future__ import annotations

import state_machine as sm
from voice_agent.flags import FlagStore
from voice_agent.types import Budgets

FAST_TIERS = ("quick", "cache")


def call_mode(flags: FlagStore | None, configured: str, call_id: str) -> str:
    """The call's mode now: the flags' (with the canary percent), else the configured one."""
    return configured if flags is None else flags.current.mode_for(call_id)


def turn_budgets(decision: sm.Decision, defaults: Budgets, flags: FlagStore | None) -> Budgets:
    """The state's own budgets, over the flags' (or the service's) defaults."""
    if flags is not None:
        current = flags.current
        defaults = Budgets(current.first_token_budget_s, defaults.stall_s, current.llm_timeout_s)
    own = decision.budgets
    return Budgets(
        first_token_s=own.first_token_budget_s or defaults.first_token_s,
        stall_s=own.stall_timeout_s or defaults.stall_s,
        total_s=own.llm_timeout_s or defaults.total_s,
    )


def switched_off(flags: FlagStore | None) -> set[str]:
    off = set()
    if flags is not None:
        if not flags.current.quick_responses:
            off.add("quick")
        if not flags.current.response_cache:
            off.add("cache")
    return off


def serving_tiers(decision: sm.Decision, mode: str, flags: FlagStore | None) -> tuple[str, ...]:
    """The state's tiers, less the fast ones when the optimizations are not serving or are
    switched off."""
    off = switched_off(flags)
    if mode != "enabled":
        off |= set(FAST_TIERS)
    return tuple(t for t in decision.tiers if t not in off)


def shadow_tiers(decision: sm.Decision, flags: FlagStore | None) -> tuple[str, ...]:
    """The fast tiers a shadow-mode turn asks what they would have answered."""
    off = switched_off(flags)
    return tuple(t for t in decision.tiers if t in FAST_TIERS and t not in off)
