"""The runner on a scripted line, no service: frames are told apart by turn, so a talked-over
turn's stray words, a silence reminder that crossed the caller's words, and a socket closed
mid-step each land where they belong."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import websockets

from voice_agent.scenarios.checks import judge
from voice_agent.scenarios.model import Expect, Scenario
from voice_agent.scenarios.outcome import Played
from voice_agent.scenarios.runner import Call, play_call

Frame = dict[str, Any]


class Line:
    """A scripted service: each frame the caller sends is answered with what `rule` gives (an
    exception raised on the next read stands for the socket closing)."""

    def __init__(self, rule: Callable[[Frame], list[Frame | Exception]]) -> None:
        self.rule = rule
        self.inbox: asyncio.Queue[Frame | Exception] = asyncio.Queue()
        self.sent: list[Frame] = []

    async def send(self, text: str) -> None:
        frame = json.loads(text)
        self.sent.append(frame)
        for answer in self.rule(frame):
            self.inbox.put_nowait(answer)

    async def recv(self) -> str:
        item = await self.inbox.get()
        if isinstance(item, Exception):
            raise item
        return json.dumps(item)


def turn_frames(
    turn_id: int, text: str, source: str = "llm", reason: str = "answer"
) -> list[Frame]:
    deltas: list[Frame] = [{"type": "agent.delta", "turn_id": turn_id, "text": w + " "}
                           for w in text.split()]  # fmt: skip
    done = {"type": "agent.done", "turn_id": turn_id, "text": text, "source": source,
            "state": "answer", "latency_ms": {"first_token": 1.0},
            "detail": {"flow": {"reason": reason}}}  # fmt: skip
    return [*deltas, done]


READY: Frame = {"type": "call.ready", "call_id": "c", "state": "answer", "mode": "enabled"}


async def played_on(
    rule: Callable[[Frame], list[Frame | Exception]], steps: list[Frame]
) -> tuple[Played, Line]:
    scenario = Scenario.model_validate({"name": "s", "steps": steps})
    played, line = Played("c", None, []), Line(rule)
    await play_call(Call(line), scenario, played)
    return played, line


async def test_words_of_a_turn_the_service_finished_anyway_stay_with_it() -> None:
    """The service had sent the whole answer before the interrupt reached it: the step says it
    was not stopped, and none of it is the next step's reply."""

    def rule(frame: Frame) -> list[Frame | Exception]:
        if frame["type"] == "call.start":
            return [READY]
        if frame.get("text") == "Where can I dispose of old medication?":
            return turn_frames(1, "Bring them to the kiosk by the door.")
        if frame.get("text") == "Is there parking?":
            return turn_frames(2, "Yes, behind the building.", "cache")
        return []

    played, _ = await played_on(rule, [
        {"say": "Where can I dispose of old medication?", "barge_in_after_words": 3,
         "expect": {"interrupted": True}},
        {"say": "Is there parking?", "expect": {"says": "behind the building"}},
    ])  # fmt: skip
    talked_over, parking = played.turns
    assert talked_over.interrupted is False and talked_over.replied
    assert judge(Expect(interrupted=True), talked_over) == [
        "expected the answer to stop when the caller talked over it, but it ended"
    ]
    assert parking.text == "Yes, behind the building." and parking.turn_id == 2


async def test_a_turn_the_service_stopped_is_interrupted_and_nothing_of_it_leaks() -> None:
    def rule(frame: Frame) -> list[Frame | Exception]:
        if frame["type"] == "call.start":
            return [READY]
        if frame.get("text") == "Tell me everything":
            return turn_frames(1, "One two three four five six")[:3]  # stopped after 3 words
        if frame["type"] == "user.interrupt":
            return [{"type": "agent.delta", "turn_id": 1, "text": "four "}]  # one in flight
        if frame.get("text") == "Thanks":
            return turn_frames(2, "You're welcome!", "quick")
        return []

    played, line = await played_on(rule, [
        {"say": "Tell me everything", "barge_in_after_words": 3},
        {"say": "Thanks"},
    ])  # fmt: skip
    stopped, thanks = played.turns
    assert stopped.interrupted and stopped.text == "One two three "
    assert [f.get("heard") for f in line.sent if f["type"] == "user.interrupt"] == [
        "One two three "
    ]
    assert thanks.text == "You're welcome!" and thanks.source == "quick"


async def test_a_silence_reminder_that_crossed_the_callers_words_is_not_the_reply() -> None:
    def rule(frame: Frame) -> list[Frame | Exception]:
        if frame["type"] == "call.start":
            return [READY]
        if frame.get("text") == "Is there parking?":
            reminder = turn_frames(1, "Are you still there?", "flow", "silence reminder")
            return [*reminder, *turn_frames(2, "Yes, behind the building.", "cache")]
        return []

    [turn] = (await played_on(rule, [{"say": "Is there parking?"}]))[0].turns
    assert (turn.turn_id, turn.source, turn.text) == (2, "cache", "Yes, behind the building.")


async def test_a_socket_closed_mid_step_names_the_step() -> None:
    def rule(frame: Frame) -> list[Frame | Exception]:
        if frame["type"] == "call.start":
            return [READY]
        if frame.get("text") == "Hello?":
            return [websockets.exceptions.ConnectionClosedError(None, None)]
        return []

    played, _ = await played_on(rule, [{"say": "Hello?"}, {"say": "Anyone?"}])
    [turn] = played.turns
    assert turn.ended is not None and turn.ended.startswith("socket closed")
    assert played.failure is not None and "during step 1 (say 'Hello?')" in played.failure
