"""The call session on its own: no server, no models. A recording sender takes its events, a
fake responder stands in for the tiers, a toy embedding for the encoder, and a virtual clock
for the silence timer."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from quick_responses.intents import IntentMatcher
from state_machine import load_flow
from voice_agent.call.session import CallConfig, CallDeps, CallSession
from voice_agent.events import (
    AgentEvent,
    CallEnd,
    CallStart,
    Delta,
    Done,
    Ended,
    ErrorEvent,
    Interrupt,
    Listening,
    Ready,
    Utterance,
)
from voice_agent.flags import Flags, FlagsPatch, FlagStore
from voice_agent.flows import FlowLibrary
from voice_agent.telemetry.event import Telemetry, TurnEvent
from voice_agent.types import Budgets, Reply, Source, TurnRequest, Vector, WouldBe

from ..fakes import VirtualClock, settle

FLOW = """
name: desk
start: greet
defaults: {silence_timeout_s: 5, first_token_budget_s: 0.5, llm_timeout_s: 2}
states:
  greet:
    say: "Hello, how can I help?"
    otherwise: answer
  answer:
    task: "Answer the caller's questions."
    on: {goodbye: bye}
  bye: {say: "Goodbye!", action: hangup}
"""


def toy_vector(text: str) -> Vector:
    """Letter counts, normalized: enough for the matcher's cosine on a few examples."""
    counts = np.zeros(26, dtype=np.float32)
    for char in text.lower():
        if "a" <= char <= "z":
            counts[ord(char) - ord("a")] += 1
    norm = float(np.linalg.norm(counts))
    return counts / norm if norm else counts


async def toy_embed(text: str) -> Vector:
    return toy_vector(text)


@dataclass
class FakeResponder:
    """Answers with `pieces` (or fails); in shadow mode says what the fast tiers would."""

    pieces: Sequence[str] = ("We open ", "at 9.")
    source: Source = "llm"
    fail: bool = False
    would: WouldBe | None = None
    while_answering: Callable[[], None] | None = None
    requests: list[TurnRequest] = field(default_factory=list)
    probes: list[TurnRequest] = field(default_factory=list)

    async def respond(self, request: TurnRequest) -> Reply:
        self.requests.append(request)
        if self.while_answering is not None:
            self.while_answering()
        if self.fail:
            raise RuntimeError("a bug in a tier")
        return Reply(self.source, self._stream(), {"reason": "fake"}, context=["We open at 9."])

    async def _stream(self) -> AsyncGenerator[str, None]:
        for piece in self.pieces:
            yield piece

    async def would_be(self, request: TurnRequest) -> WouldBe | None:
        self.probes.append(request)
        return self.would


@dataclass
class Recorder:
    events: list[TurnEvent] = field(default_factory=list)

    def turn_served(self, event: TurnEvent) -> None:
        self.events.append(event)


def flags_in(mode: str) -> FlagStore:
    flags = Flags(mode, 100.0, True, True, 0.88, 0.5, 2.0)  # type: ignore[arg-type]
    return FlagStore(flags, audit_log=None)


class Call:
    def __init__(
        self,
        folder: Path,
        responder: FakeResponder | None = None,
        flags: FlagStore | None = None,
        **config: Any,
    ) -> None:
        (folder / "desk.yaml").write_text(FLOW)
        flow = load_flow(folder / "desk.yaml")
        examples = {"goodbye": ["goodbye", "bye now"]}
        vectors = np.stack([toy_vector(t) for texts in examples.values() for t in texts])
        self.responder = responder or FakeResponder()
        self.observed = Recorder()
        self.clock = VirtualClock()
        self.sent: list[AgentEvent] = []
        deps = CallDeps(
            responder=self.responder,
            flows=FlowLibrary({flow.name: flow}, flow.name),
            intents=IntentMatcher(examples, vectors, threshold=0.99, margin=0.0),
            embed=toy_embed,
            telemetry=Telemetry([self.observed]),
            flags=flags,
            sleep=self.clock.sleep,
        )
        config = CallConfig(
            mode="enabled",
            fallback_text="Sorry, one moment please.",
            budgets=Budgets(1.0, 1.0, 4.0),
            context={"business": "Maple"},
            **config,
        )
        self.session = CallSession(deps, self._send, config)

    async def _send(self, event: AgentEvent) -> None:
        self.sent.append(event)

    async def say(self, event: CallStart | Utterance | Interrupt | CallEnd) -> list[AgentEvent]:
        """Hand the session one caller event; the events it sent until it went quiet."""
        before = len(self.sent)
        await self.session.handle(event)
        await settle()
        return self.sent[before:]

    async def started(self) -> list[AgentEvent]:
        return await self.say(CallStart(call_id="c1"))


def kinds(events: Sequence[AgentEvent]) -> list[str]:
    return [type(e).__name__ for e in events]


def done_of(events: Sequence[AgentEvent]) -> Done:
    return next(e for e in events if isinstance(e, Done))


async def test_a_started_call_greets_from_its_flow_and_then_listens(tmp_path: Path) -> None:
    call = Call(tmp_path)
    events = await call.started()
    assert kinds(events) == ["Ready", "Delta", "Done", "Listening"]
    assert events[0] == Ready("c1", "greet", "enabled")
    assert done_of(events).text == "Hello, how can I help?" and done_of(events).source == "flow"
    assert call.session.started and call.session.state == "greet"


async def test_an_utterance_is_answered_by_the_tiers_streamed_and_observed(
    tmp_path: Path,
) -> None:
    call = Call(tmp_path)
    await call.started()
    events = await call.say(Utterance("what time do you open"))
    assert kinds(events) == ["Delta", "Delta", "Done", "Listening"]
    done = done_of(events)
    assert (done.text, done.source, done.state) == ("We open at 9.", "llm", "answer")
    assert done.detail["flow"]["reason"] and done.detail["reason"] == "fake"
    request = call.responder.requests[0]
    assert request.text == "what time do you open" and request.flow == "desk"
    assert request.budgets == Budgets(0.5, 1.0, 2.0)  # the flow's defaults over the service's
    assert [m.content for m in request.history] == ["Hello, how can I help?"]
    [event] = [e for e in call.observed.events if e.question is not None]
    assert (event.mode, event.source, event.answer) == ("enabled", "llm", "We open at 9.")
    assert event.context == ("We open at 9.",)
    assert [(m.role, m.content) for m in call.session.history][-2:] == [
        ("user", "what time do you open"),
        ("assistant", "We open at 9."),
    ]


async def test_a_turn_reads_the_flags_once_so_a_change_applies_from_the_next_turn(
    tmp_path: Path,
) -> None:
    flags = flags_in("enabled")
    responder = FakeResponder()
    responder.while_answering = lambda: flags.change(FlagsPatch(mode="disabled"), who="test")
    call = Call(tmp_path, responder, flags)
    await call.started()
    await call.say(Utterance("what time do you open"))
    responder.while_answering = None
    await call.say(Utterance("and on sundays"))
    first, second = responder.requests
    assert "quick" in first.tiers and "cache" in first.tiers  # type: ignore[operator]
    assert "quick" not in second.tiers and "cache" not in second.tiers  # type: ignore[operator]
    modes = [e.mode for e in call.observed.events if e.question is not None]
    assert modes == ["enabled", "disabled"]  # the turn the flags changed in kept its mode


async def test_shadow_mode_serves_the_llm_path_and_asks_the_fast_tiers_beside_it(
    tmp_path: Path,
) -> None:
    would = WouldBe("cache", "We open at nine.", 2.0)
    call = Call(tmp_path, FakeResponder(would=would), flags_in("shadow"))
    await call.started()
    await call.say(Utterance("what time do you open"))
    [served] = call.responder.requests
    [probe] = call.responder.probes
    assert served.shadow and not {"quick", "cache"} & set(served.tiers or ())
    assert set(probe.tiers or ()) == {"quick", "cache"}
    [event] = [e for e in call.observed.events if e.question is not None]
    assert event.mode == "shadow" and event.would_be == would


async def test_silence_past_the_states_timeout_brings_the_reminder(tmp_path: Path) -> None:
    call = Call(tmp_path)
    await call.started()
    before = len(call.sent)
    await call.clock.advance(4.9)
    assert call.sent[before:] == []
    await call.clock.advance(0.2)
    reminder = call.sent[before:]
    assert kinds(reminder) == ["Delta", "Done", "Listening"]
    assert done_of(reminder).text == "Are you still there?"


async def test_the_caller_speaking_before_the_timeout_cancels_the_reminder(
    tmp_path: Path,
) -> None:
    call = Call(tmp_path)
    await call.started()
    await call.clock.advance(3)
    assert await call.say(Utterance("what time do", final=False)) == []  # still speaking
    await call.clock.advance(3)  # past the greeting's timeout: no reminder while speaking
    assert [e for e in call.sent if isinstance(e, Done) and "still there" in e.text] == []
    await call.say(Utterance("what time do you open"))
    await call.clock.advance(5.1)  # the answer's own timer runs from when it ended
    assert done_of(call.sent[-3:]).text == "Are you still there?"


async def test_a_barge_in_keeps_only_what_the_caller_heard(tmp_path: Path) -> None:
    call = Call(tmp_path)
    await call.started()
    await call.say(Utterance("what time do you open"))
    await call.say(Interrupt(heard="We open"))
    assert call.session.history[-1].content == "We open"
    await call.say(Interrupt(heard=""))
    assert call.session.history[-1].content == "what time do you open"


async def test_a_broken_tier_gets_the_fallback_line_and_the_call_goes_on(tmp_path: Path) -> None:
    call = Call(tmp_path, FakeResponder(fail=True))
    await call.started()
    events = await call.say(Utterance("what time do you open"))
    done = done_of(events)
    assert (done.text, done.source) == ("Sorry, one moment please.", "fallback")
    assert done.detail == {"reason": "internal_error"} and isinstance(events[-1], Listening)
    call.responder.fail = False
    assert done_of(await call.say(Utterance("what time do you open"))).source == "llm"


async def test_a_goodbye_intent_ends_the_call_with_the_flows_action(tmp_path: Path) -> None:
    call = Call(tmp_path)
    await call.started()
    await call.say(Utterance("what time do you open"))
    events = await call.say(Utterance("goodbye"))
    assert kinds(events) == ["Delta", "Done", "ActionEvent", "Ended"]
    assert events[-1] == Ended("agent_hangup")
    assert isinstance(await call.say(Utterance("hello?")), list)
    assert isinstance(call.sent[-1], ErrorEvent) and call.sent[-1].code == "call_ended"


@pytest.mark.parametrize(
    ("first", "code"),
    [(Utterance("hello"), "call_not_started"), (CallStart(flow="nope"), "unknown_flow")],
)
async def test_a_call_not_started_refuses_events_with_an_error(
    tmp_path: Path, first: Utterance | CallStart, code: str
) -> None:
    call = Call(tmp_path)
    [error] = await call.say(first)
    assert isinstance(error, ErrorEvent) and error.code == code
    assert not call.session.started and (await call.started())[0] == Ready("c1", "greet", "enabled")


async def test_a_second_call_start_is_refused_and_the_call_goes_on(tmp_path: Path) -> None:
    call = Call(tmp_path)
    await call.started()
    [error] = await call.say(CallStart(call_id="c2"))
    assert isinstance(error, ErrorEvent) and error.code == "call_already_started"
    assert call.session.call_id == "c1"
    events = await call.say(CallEnd())
    assert events == [Ended("caller_hangup")]
    assert not [e for e in events if isinstance(e, Delta)]
