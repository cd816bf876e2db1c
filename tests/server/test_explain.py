"""explain answers through the same intent matching and turn plan as a call, so the run-time
flags (mode, canary share, a fast tier switched off) change its verdict as they change calls."""

from __future__ import annotations

from collections.abc import Callable

from voice_agent.flags import FlagsPatch
from voice_agent.server.explain import explain
from voice_agent.server.service import Service


async def test_explain_serves_as_a_call_would_under_the_flags_now(
    make_service: Callable[..., Service],
) -> None:
    service = make_service(VOICE_AGENT_DEFAULT_FLOW="pharmacy")
    flags = service.flags
    assert flags is not None

    enabled = await explain(service, "hello", state="answer")
    assert enabled["plan"]["mode"] == "enabled" and enabled["served_by"] == "quick"

    flags.change(FlagsPatch(quick_responses=False), who="test")
    off = await explain(service, "hello", state="answer")
    assert "quick" not in off["plan"]["tiers"] and off["served_by"] == "knowledge"
    assert off["quick"]["answer"]  # the template still matches; the plan does not let it serve

    flags.change(FlagsPatch(quick_responses=True, mode="shadow"), who="test")
    shadow = await explain(service, "hello", state="answer")
    assert shadow["plan"]["shadow_tiers"] and shadow["served_by"] == "knowledge"

    flags.change(FlagsPatch(mode="enabled", rollout_percent=50), who="test")
    ids = [f"call-{n}" for n in range(40)]
    canary = next(i for i in ids if flags.current.mode_for(i) == "enabled")
    held_back = next(i for i in ids if flags.current.mode_for(i) == "shadow")
    assert (await explain(service, "hello", state="answer", call_id=canary))["served_by"] == "quick"
    rest = await explain(service, "hello", state="answer", call_id=held_back)
    assert rest["plan"]["mode"] == "shadow" and rest["served_by"] == "knowledge"
