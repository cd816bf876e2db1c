"""A scenario played against a running service over the native call protocol (docs/protocol.md),
as a frontend would: what each step got back (words, source, state, action, first-word time).

Frames are told apart by their `turn_id`: once a turn has ended or been talked over, nothing
more of it counts for a later step (a cancelled turn's stray words, a silence reminder that
crossed the caller's words on the line)."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any
from urllib.parse import quote

import websockets

from voice_agent.scenarios.model import Scenario, Step
from voice_agent.scenarios.outcome import Played, Turn

OPEN_TIMEOUT_S = 30.0  # to open the call's socket
REPLY_WAIT_S = 30.0  # the longest a turn may take, from the step's last frame to its end
AFTER_DONE_S = 0.3  # how long an action or the end of the call may trail the turn's end
QUIET_S = 0.7  # how long a step that expects no reply (or a barge-in's end) is listened for
SILENCE_WAIT_S = 40.0  # a silence step waits for the agent's reminder this long at most
REMINDER = "silence reminder"  # the flow's reason on a reminder turn (detail.flow.reason)
TURN_FRAMES = ("agent.delta", "agent.done", "agent.action")


class Call:
    """One call's socket: frames read ahead are kept for the next read, and `finished` is the
    highest turn id that ended or was cancelled."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.ahead: list[dict[str, Any]] = []
        self.finished = 0

    async def send(self, frame: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(frame))

    async def next(self, deadline: float) -> dict[str, Any] | None:
        if self.ahead:
            return self.ahead.pop(0)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        try:
            async with asyncio.timeout(remaining):
                raw = await self.ws.recv()
        except TimeoutError:
            return None
        frame: dict[str, Any] = json.loads(raw)
        return frame

    def stale(self, frame: dict[str, Any]) -> bool:
        turn_id = frame.get("turn_id")
        return (
            frame.get("type") in TURN_FRAMES
            and isinstance(turn_id, int)
            and turn_id <= self.finished
        )

    async def turn(
        self, turn: Turn, sent: float, wait_s: float, barge_in: int | None = None,
        skip_reminders: bool = False,
    ) -> None:  # fmt: skip
        """Read one turn into `turn`: its words, its end and what trails it; with `barge_in`,
        talk over it once that many words arrived; with `skip_reminders`, a silence reminder
        that crossed the caller's frame is not the reply."""
        deadline = time.monotonic() + wait_s
        first_at: dict[int, float] = {}
        words: dict[int, str] = {}
        while (frame := await self.next(deadline)) is not None:
            if self.stale(frame):
                continue
            kind, turn_id = frame.get("type"), frame.get("turn_id")
            if kind == "error":
                turn.errors.append(f"error frame {frame.get('code')}: {frame.get('message')}")
            elif kind == "call.ended":
                turn.ended = str(frame.get("reason"))
                return
            elif kind == "agent.delta" and isinstance(turn_id, int):
                first_at.setdefault(turn_id, time.perf_counter())
                words[turn_id] = words.get(turn_id, "") + str(frame.get("text", ""))
                if barge_in is not None and len(words[turn_id].split()) >= barge_in:
                    turn.turn_id, turn.text = turn_id, words[turn_id]
                    turn.first_word_ms = (first_at[turn_id] - sent) * 1000
                    await self._talk_over(turn, turn_id)
                    return
            elif kind == "agent.done" and isinstance(turn_id, int):
                self.finished = max(self.finished, turn_id)
                if skip_reminders and _reason(frame) == REMINDER:
                    continue
                self._done(turn, frame)
                turn.first_word_ms = (first_at.get(turn_id, time.perf_counter()) - sent) * 1000
                await self._trailing(turn)
                return

    def _done(self, turn: Turn, frame: dict[str, Any]) -> None:
        turn.replied = True
        turn.text = str(frame.get("text", ""))
        turn.source, turn.state = frame.get("source"), frame.get("state")
        turn.turn_id = frame.get("turn_id")
        turn.detail = dict(frame.get("detail") or {})
        turn.service_first_word_ms = (frame.get("latency_ms") or {}).get("first_token")

    async def _talk_over(self, turn: Turn, turn_id: int) -> None:
        """The caller talks over the turn; it was stopped if its end never comes."""
        await self.send({"type": "user.interrupt", "heard": turn.text})
        turn.interrupted = True
        deadline = time.monotonic() + QUIET_S
        while (frame := await self.next(deadline)) is not None:
            if frame.get("turn_id") == turn_id:
                if frame.get("type") == "agent.done":  # the service finished it anyway
                    turn.interrupted = False
                    self._done(turn, frame)
                continue
            self.ahead.append(frame)
            break
        self.finished = max(self.finished, turn_id)

    async def _trailing(self, turn: Turn) -> None:
        """An action and the call's end follow the turn's end at once, when they come."""
        deadline = time.monotonic() + AFTER_DONE_S
        while (frame := await self.next(deadline)) is not None:
            if frame.get("type") == "agent.action" and frame.get("turn_id") == turn.turn_id:
                turn.action = {k: v for k, v in frame.items() if k not in ("type", "turn_id")}
            elif frame.get("type") == "call.ended":
                turn.ended = str(frame.get("reason"))
                return
            else:
                self.ahead.append(frame)
                return


def _reason(frame: dict[str, Any]) -> object:
    flow = (frame.get("detail") or {}).get("flow")
    return flow.get("reason") if isinstance(flow, dict) else None


async def play_step(call: Call, step: Step, state: str | None) -> Turn:
    turn = Turn(step.label, state, step.say)
    if step.say is not None:
        for partial in step.partial:
            await call.send({"type": "user.utterance", "text": partial, "final": False})
        sent = time.perf_counter()
        await call.send({"type": "user.utterance", "text": step.say})
        await call.turn(turn, sent, REPLY_WAIT_S, step.barge_in_after_words, skip_reminders=True)
    elif step.dtmf is not None:
        for key in step.dtmf:
            await call.send({"type": "user.dtmf", "digit": key})
        wait = QUIET_S if step.expect.no_reply else REPLY_WAIT_S
        await call.turn(turn, time.perf_counter(), wait, skip_reminders=True)
    else:
        await call.turn(turn, time.perf_counter(), SILENCE_WAIT_S)
    return turn


async def play(url: str, scenario: Scenario, key: str | None = None) -> Played:
    """Play `scenario` on the service at `url` (http(s):// or ws(s)://, its base). A call that
    cannot be opened or is closed under it ends the scenario with the reason, never a crash."""
    base = url.rstrip("/")
    for plain, secure in (("http://", "ws://"), ("https://", "wss://")):
        base = secure + base[len(plain) :] if base.startswith(plain) else base
    socket_url = f"{base}/v1/calls" + (f"?token={quote(key)}" if key else "")
    played = Played(f"scenario-{time.time_ns()}", None, [])
    try:
        async with websockets.connect(socket_url, open_timeout=OPEN_TIMEOUT_S) as ws:
            await play_call(Call(ws), scenario, played)
    except (OSError, TimeoutError, websockets.exceptions.WebSocketException) as exc:
        played.failure = played.failure or f"{type(exc).__name__}: {exc}"
    return played


async def play_call(call: Call, scenario: Scenario, played: Played) -> None:
    start: dict[str, Any] = {"type": "call.start", "call_id": played.call_id,
                             "metadata": scenario.metadata}  # fmt: skip
    if scenario.flow:
        start["flow"] = scenario.flow
    await call.send(start)
    ready = await call.next(time.monotonic() + REPLY_WAIT_S)
    if ready is None or ready.get("type") != "call.ready":
        played.failure = f"the call did not start: {ready}"
        return
    state = ready.get("state")
    # The start state's words follow the ready frame at once, when it has some; a scenario
    # that expects none still takes them off the line before its first step.
    greeting = Turn("greeting", state)
    wait = REPLY_WAIT_S if scenario.greeting is not None else QUIET_S
    await call.turn(greeting, time.perf_counter(), wait)
    if greeting.replied or scenario.greeting is not None:
        played.greeting = greeting
        state = greeting.state or state
    for number, step in enumerate(scenario.steps, 1):
        try:
            turn = await play_step(call, step, state)
        except websockets.exceptions.ConnectionClosed as exc:
            played.turns.append(Turn(step.label, state, step.say, ended=f"socket closed: {exc}"))
            played.failure = f"the socket closed during step {number} ({step.label}): {exc}"
            return
        played.turns.append(turn)
        state = turn.state or state
        if turn.ended is not None:
            return
    try:
        await call.send({"type": "call.end"})
    except websockets.exceptions.ConnectionClosed:
        pass  # the call ended on its own just after the last step: nothing is lost
