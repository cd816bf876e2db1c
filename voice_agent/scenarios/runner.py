"""A scenario played against a running service over the native call protocol (docs/protocol.md),
as a frontend would: what each step got back (words, source, state, action, first-word time),
then the turns' quality scores from the service's dashboard data once they are scored."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx
import websockets

from voice_agent.scenarios.model import Scenario, Step

REPLY_WAIT_S = 30.0  # the longest a turn may take before the step fails as unanswered
AFTER_DONE_S = 0.3  # how long an action or the end of the call may trail the turn's end
QUIET_S = 0.7  # how long a step that expects no reply listens for one
SILENCE_WAIT_S = 40.0  # a silence step waits for the agent's reminder this long at most
QUALITY_WAIT_S = 15.0  # how long scores may take to arrive after the call


@dataclass(slots=True)
class Turn:
    """What one step (or the greeting) got back."""

    label: str
    state_before: str | None = None  # the state the caller's words were heard in
    words: str | None = None  # the caller's words, for a say step
    text: str = ""
    source: str | None = None
    state: str | None = None
    turn_id: int | None = None
    first_word_ms: float | None = None  # from the step's last frame to the first words, here
    service_first_word_ms: float | None = None  # as the service measured it
    action: dict[str, Any] | None = None
    ended: str | None = None  # the call ended, with this reason
    detail: dict[str, Any] = field(default_factory=dict)
    replied: bool = False
    interrupted: bool = False
    errors: list[str] = field(default_factory=list)  # error frames the step drew
    quality: dict[str, Any] | None = None  # score and parts, when the service scored it
    # Checked against the knowledge base's passages for the words: contradicted or not, and
    # the service's notes (None: not checked).
    contradicted: bool | None = None
    knowledge_notes: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Played:
    call_id: str
    greeting: Turn | None
    turns: list[Turn]
    failure: str | None = None  # the call could not go on (closed, timed out)


class Call:
    """One call's socket, with frames read ahead kept for the next read."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.ahead: list[dict[str, Any]] = []

    async def send(self, frame: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(frame))

    async def next(self, wait_s: float) -> dict[str, Any] | None:
        if self.ahead:
            return self.ahead.pop(0)
        try:
            frame: dict[str, Any] = json.loads(await asyncio.wait_for(self.ws.recv(), wait_s))
        except TimeoutError:
            return None
        return frame

    async def turn(self, turn: Turn, sent: float, wait_s: float, barge_in: int | None) -> None:
        """Read one turn's frames into `turn`: deltas, the end, a trailing action."""
        while (frame := await self.next(wait_s)) is not None:
            kind = frame.get("type")
            if kind == "error":
                turn.errors.append(f"{frame.get('code')}: {frame.get('message')}")
            elif kind == "call.ended":
                turn.ended = str(frame.get("reason"))
                return
            elif kind == "agent.delta":
                if turn.first_word_ms is None:
                    turn.first_word_ms = (time.perf_counter() - sent) * 1000
                turn.text += str(frame.get("text", ""))
                if barge_in is not None and len(turn.text.split()) >= barge_in:
                    await self.send({"type": "user.interrupt", "heard": turn.text})
                    turn.interrupted = True
                    await self._drain_cancelled()
                    return
            elif kind == "agent.done":
                self._done(turn, frame)
                await self._trailing(turn)
                return

    def _done(self, turn: Turn, frame: dict[str, Any]) -> None:
        turn.replied = True
        turn.text = str(frame.get("text", turn.text))
        turn.source, turn.state = frame.get("source"), frame.get("state")
        turn.turn_id = frame.get("turn_id")
        turn.detail = dict(frame.get("detail") or {})
        turn.service_first_word_ms = (frame.get("latency_ms") or {}).get("first_token")

    async def _trailing(self, turn: Turn) -> None:
        """An action and the call's end follow the turn's end at once, when they come."""
        while (frame := await self.next(AFTER_DONE_S)) is not None:
            if frame.get("type") == "agent.action" and frame.get("turn_id") == turn.turn_id:
                turn.action = {k: v for k, v in frame.items() if k not in ("type", "turn_id")}
            elif frame.get("type") == "call.ended":
                turn.ended = str(frame.get("reason"))
                return
            else:
                self.ahead.append(frame)
                return

    async def _drain_cancelled(self) -> None:
        """After a barge-in nothing more comes for the cancelled turn; a frame that does is
        kept for the next step, which then sees it."""
        frame = await self.next(QUIET_S)
        if frame is not None:
            self.ahead.append(frame)


async def play_step(call: Call, step: Step, state: str | None) -> Turn:
    turn = Turn(step.label, state, step.say)
    if step.say is not None:
        for partial in step.partial:
            await call.send({"type": "user.utterance", "text": partial, "final": False})
        sent = time.perf_counter()
        await call.send({"type": "user.utterance", "text": step.say})
        await call.turn(turn, sent, REPLY_WAIT_S, step.barge_in_after_words)
    elif step.dtmf is not None:
        for key in step.dtmf:
            await call.send({"type": "user.dtmf", "digit": key})
        sent = time.perf_counter()
        wait = QUIET_S if step.expect.no_reply else REPLY_WAIT_S
        await call.turn(turn, sent, wait, None)
    else:
        await call.turn(turn, time.perf_counter(), SILENCE_WAIT_S, None)
    return turn


async def play(url: str, scenario: Scenario, key: str | None = None) -> Played:
    """Play `scenario` on the service at `url` (http:// or ws://, its base). A call that
    cannot be opened or is closed under it ends the scenario with the reason, never a crash."""
    base = url.rstrip("/").replace("https://", "wss://").replace("http://", "ws://")
    socket_url = f"{base}/v1/calls" + (f"?token={quote(key)}" if key else "")
    played = Played(f"scenario-{time.time_ns()}", None, [])
    try:
        async with websockets.connect(socket_url, open_timeout=30) as ws:
            await play_call(Call(ws), scenario, played)
    except (OSError, TimeoutError, websockets.exceptions.WebSocketException) as exc:
        played.failure = f"{type(exc).__name__}: {exc}"
    return played


async def play_call(call: Call, scenario: Scenario, played: Played) -> None:
    start: dict[str, Any] = {"type": "call.start", "call_id": played.call_id,
                             "metadata": scenario.metadata}  # fmt: skip
    if scenario.flow:
        start["flow"] = scenario.flow
    await call.send(start)
    ready = await call.next(REPLY_WAIT_S)
    if ready is None or ready.get("type") != "call.ready":
        played.failure = f"the call did not start: {ready}"
        return
    state = ready.get("state")
    # The start state's words follow the ready frame at once, when it has some; a scenario
    # that expects none still takes them off the line before its first step.
    greeting = Turn("greeting", state)
    wait = REPLY_WAIT_S if scenario.greeting is not None else QUIET_S
    await call.turn(greeting, time.perf_counter(), wait, None)
    if greeting.replied or scenario.greeting is not None:
        played.greeting = greeting
        state = greeting.state or state
    for step in scenario.steps:
        turn = await play_step(call, step, state)
        played.turns.append(turn)
        state = turn.state or state
        if turn.ended is not None:
            return
    await call.send({"type": "call.end"})


async def add_quality(url: str, played: Played, key: str | None) -> None:
    """The service's quality score of each answered turn, from its dashboard data (scores
    come shortly after the answers)."""
    wanted = {t.turn_id: t for t in played.turns if t.replied and t.source != "flow"}
    if not wanted:
        return
    headers = {"X-API-Key": key} if key else {}
    deadline = time.monotonic() + QUALITY_WAIT_S
    async with httpx.AsyncClient(base_url=url.replace("ws", "http", 1), headers=headers) as http:
        while time.monotonic() < deadline:
            response = await http.get(f"/v1/dashboard/calls/{played.call_id}")
            if response.status_code == 200:
                for record in response.json()["turn_records"]:
                    if record["turn"] in wanted and "quality" in record:
                        wanted[record["turn"]].quality = record["quality"]
            if all(t.quality is not None for t in wanted.values()):
                return
            await asyncio.sleep(0.3)


async def check_against_knowledge(
    url: str, played: Played, flow: str | None, key: str | None, which: set[int]
) -> None:
    """Whether each chosen turn's answer says the opposite of what the knowledge base says
    about the caller's words: the passages the service retrieves for them (POST /v1/explain),
    then its contradiction check over those (POST /v1/quality/score), whatever tier answered."""
    headers = {"X-API-Key": key} if key else {}
    async with httpx.AsyncClient(base_url=url.replace("ws", "http", 1), headers=headers,
                                 timeout=30) as http:  # fmt: skip
        for index in sorted(which):
            turn = played.turns[index]
            if not turn.replied or not turn.text:
                continue
            words = turn.words or turn.text
            body = {"text": words, "flow": flow, "state": turn.state_before}
            explained = await http.post("/v1/explain", json=body)
            if explained.status_code != 200:
                continue
            found = (explained.json().get("knowledge") or {}).get("passages") or []
            passages = [str(p["text"]) for p in found if p.get("text")]
            if not passages:
                continue
            asked = {"question": words, "answer": turn.text, "context": passages}
            scored = await http.post("/v1/quality/score", json=asked)
            if scored.status_code == 200:
                result = scored.json()
                turn.contradicted = result["parts"].get("consistency") == 0
                turn.knowledge_notes = list(result.get("notes") or [])
