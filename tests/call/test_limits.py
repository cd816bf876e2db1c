"""A call's own bounds, kept by its session: turns a minute and the call's duration."""

from __future__ import annotations

from pathlib import Path

from voice_agent.call.limits import TurnRate
from voice_agent.events import Done, Ended, ErrorEvent, Utterance

from ..fakes import ManualClock
from .test_session import Call, kinds


def test_turns_past_the_rate_are_refused_until_the_minute_has_moved_on() -> None:
    clock = ManualClock()
    rate = TurnRate(3, clock)
    assert [rate.allow() for _ in range(4)] == [True, True, True, False]
    clock.advance(59.9)
    assert not rate.allow()
    clock.advance(0.2)  # the first three are now over a minute old
    assert [rate.allow() for _ in range(4)] == [True, True, True, False]


def test_no_rate_means_no_limit() -> None:
    rate = TurnRate(0, ManualClock())
    assert all(rate.allow() for _ in range(1000))


async def test_a_call_past_its_turn_rate_gets_an_error_and_no_answer_and_goes_on(
    tmp_path: Path,
) -> None:
    call = Call(tmp_path, max_turns_per_minute=2)
    await call.started()
    first = await call.say(Utterance("When do you open?"))
    second = await call.say(Utterance("And on Sunday?"))
    third = await call.say(Utterance("And on Monday?"))
    assert "Done" in kinds(first) and "Done" in kinds(second)
    assert kinds(third) == ["ErrorEvent"]
    error = third[0]
    assert isinstance(error, ErrorEvent) and error.code == "too_many_turns"
    assert len(call.responder.requests) == 2  # the refused turn never reached the tiers
    assert [m.content for m in call.session.history if m.role == "user"] == [
        "When do you open?",
        "And on Sunday?",
    ]
    assert not call.session.ended  # the window moving on is the rate's own test, above


async def test_a_call_past_its_duration_hears_the_time_limit_line_and_ends(
    tmp_path: Path,
) -> None:
    call = Call(tmp_path, max_duration_s=600, time_limit_text="Time is up. Goodbye.")
    await call.started()
    await call.clock.advance(599)
    assert not call.session.ended
    before = len(call.sent)
    await call.clock.advance(1)
    after = call.sent[before:]
    said = [e.text for e in after if isinstance(e, Done)]
    assert said[-1] == "Time is up. Goodbye."
    assert after[-1] == Ended("time_limit") and call.session.ended
