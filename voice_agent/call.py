"""One call session per connection: it owns the call's tasks and history and drives each turn
through the responder chain. Frontends feed it caller events and carry its agent events out."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass

from voice_agent.events import (
    ActionEvent,
    AgentEvent,
    CallEnd,
    CallerEvent,
    CallStart,
    Delta,
    Done,
    Dtmf,
    Ended,
    ErrorEvent,
    Interrupt,
    Ready,
    Utterance,
)
from voice_agent.tasks import TaskScope
from voice_agent.turn import TurnRecord
from voice_agent.types import Message, Responder, TurnRequest

log = logging.getLogger(__name__)

DEFAULT_STATE = "default"

Send = Callable[[AgentEvent], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class CallConfig:
    mode: str
    fallback_text: str
    cancel_wait_s: float = 0.5
    max_history_messages: int = 40


class CallSession:
    def __init__(self, responder: Responder, send: Send, config: CallConfig) -> None:
        self._responder = responder
        self._send = send
        self._config = config
        self.call_id: str | None = None
        self.state = DEFAULT_STATE
        self.history: list[Message] = []
        self.ended = False
        self.digits: list[str] = []
        self._tasks = TaskScope("call")
        self._turn: asyncio.Task[None] | None = None
        self._turn_id = 0

    @property
    def started(self) -> bool:
        return self.call_id is not None

    async def handle(self, event: CallerEvent, received_at: float | None = None) -> None:
        """Act on one caller event. Returns at once; turns run in their own task."""
        if self.ended:
            await self.error("call_ended", "the call has ended")
            return
        if isinstance(event, CallStart):
            await self._start(event)
        elif not self.started:
            await self.error("call_not_started", "send call.start before anything else")
        elif isinstance(event, Utterance):
            await self._utterance(event, received_at)
        elif isinstance(event, Interrupt):
            await self._interrupt(event)
        elif isinstance(event, Dtmf):
            self.digits.append(event.digit)
        elif isinstance(event, CallEnd):
            await self.end(event.reason)

    async def error(self, code: str, message: str) -> None:
        await self._send(ErrorEvent(code, message))

    async def _start(self, event: CallStart) -> None:
        if self.started:
            await self.error("call_already_started", f"call {self.call_id} is already running")
            return
        self.call_id = event.call_id or uuid.uuid4().hex
        self._tasks = TaskScope(f"call-{self.call_id}")
        await self._send(Ready(self.call_id, self.state, self._config.mode))

    async def _utterance(self, event: Utterance, received_at: float | None) -> None:
        if not event.final:
            return  # partial transcripts do not start a turn
        await self._cancel_turn()
        self._turn_id += 1
        record = TurnRecord(self.call_id or "", self._turn_id)
        if received_at is not None:
            record.received_at = received_at
        request = TurnRequest(
            call_id=record.call_id,
            turn_id=self._turn_id,
            text=event.text.strip(),
            state=self.state,
            history=tuple(self.history),
            record=record,
        )
        self._remember(Message("user", request.text))
        self._turn = self._tasks.spawn(self._run_turn(request), name=f"turn-{self._turn_id}")

    async def _interrupt(self, event: Interrupt) -> None:
        await self._cancel_turn()
        if event.heard is None:
            return  # keep what was sent: the frontend does not know what was heard
        for index in range(len(self.history) - 1, -1, -1):
            message = self.history[index]
            if message.role == "assistant":
                if event.heard.strip():
                    message.content = event.heard.strip()
                else:
                    del self.history[index]
                return
            if message.role == "user":
                return  # nothing of the agent's was said since the caller's last turn

    async def _cancel_turn(self) -> None:
        turn, self._turn = self._turn, None
        if turn is not None:
            await self._tasks.cancel(turn, self._config.cancel_wait_s)

    def _remember(self, message: Message) -> None:
        self.history.append(message)
        overflow = len(self.history) - self._config.max_history_messages
        if overflow > 0:
            del self.history[:overflow]

    async def _run_turn(self, request: TurnRequest) -> None:
        record = request.record
        spoken: list[str] = []
        said = Message("assistant", "")
        self._remember(said)
        try:
            reply = await self._responder.respond(request)
            async with aclosing(reply.pieces):
                async for piece in reply.pieces:
                    if not piece:
                        continue
                    await self._send(Delta(request.turn_id, piece))
                    record.first_token_sent()
                    spoken.append(piece)
                    said.content = "".join(spoken).strip()
            await self._send(
                Done(
                    turn_id=request.turn_id,
                    text=said.content,
                    source=reply.source,
                    state=self.state,
                    latency_ms=record.latency_ms(),
                    detail=reply.detail,
                )
            )
            for action in reply.actions:
                await self._send(ActionEvent(request.turn_id, action.name, action.params))
            if any(a.name == "hangup" for a in reply.actions):
                self._turn = None  # this task is ending the call; do not cancel itself
                await self.end("agent_hangup")
        except asyncio.CancelledError:
            raise
        except Exception:  # task boundary: a broken turn must not leave the caller in silence
            log.exception("turn %s of call %s failed", request.turn_id, request.call_id)
            await self._fail_turn(request, spoken, said)

    async def _fail_turn(self, request: TurnRequest, spoken: list[str], said: Message) -> None:
        fallback = self._config.fallback_text
        text = (" " if spoken else "") + fallback
        await self._send(Delta(request.turn_id, text))
        request.record.first_token_sent()
        said.content = ("".join(spoken) + text).strip()
        await self._send(
            Done(
                turn_id=request.turn_id,
                text=said.content,
                source="fallback",
                state=self.state,
                latency_ms=request.record.latency_ms(),
                detail={"reason": "internal_error"},
            )
        )

    async def end(self, reason: str) -> None:
        """End the call: stop its work, then tell the frontend."""
        if self.ended:
            return
        self.ended = True
        await self._cancel_turn()
        await self._send(Ended(reason))

    async def close(self) -> None:
        """The connection is gone: cancel everything, waiting a bounded time."""
        self.ended = True
        await self._tasks.cancel_all(self._config.cancel_wait_s)
