"""`POST /v1/chat/completions`: the OpenAI-compatible frontend (Vapi's custom LLM, any OpenAI
client). Each request is one caller turn, answered by a call session like any other call, so
the fast tiers, the flow and the telemetry all apply. With Vapi's `call.id` the session lives
across requests (its flow state, and its history when a request carries only the newest
message); without, a session is made for the request. The conversation a request carries is
the history. A newer request for a call ends the older
one's stream at once and cancels its work.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from voice_agent.call.session import CallSession
from voice_agent.errors import ChatError
from voice_agent.events import (
    AgentEvent,
    CallStart,
    Delta,
    Done,
    Ended,
    ErrorEvent,
    Transcript,
    Utterance,
)
from voice_agent.frontends.openai_chat import (
    ChatBody,
    Chunks,
    call_id,
    caller_turn,
)
from voice_agent.server.access import key_of
from voice_agent.server.service import Service
from voice_agent.server.state import AppState, app_state
from voice_agent.types import Message

log = logging.getLogger(__name__)

MAX_CALLS = 1000  # sessions kept by call id; the least recently used goes first
TURN_QUEUE = 1024  # events of one turn waiting for the HTTP response


class TurnRefused(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class ChatCall:
    """A call session whose agent events are routed to the request of their turn. A turn's
    queue is bounded: a response read slowly holds its turn back (the turn waits to put its
    next piece) rather than growing memory or dropping words, and its end always arrives."""

    def __init__(self, service: Service, queue_size: int = TURN_QUEUE) -> None:
        self.session = CallSession(service.call_deps, self._send, service.call_config)
        self._turns: dict[int, asyncio.Queue[AgentEvent | None]] = {}
        self._queue_size = queue_size
        self._refused: ErrorEvent | None = None  # why the newest utterance got no turn

    async def _send(self, event: AgentEvent) -> None:
        if isinstance(event, ErrorEvent):
            self._refused = event
            return
        if isinstance(event, Ended):
            self._close_turns()
            return
        turn_id = getattr(event, "turn_id", None)
        queue = self._turns.get(turn_id) if turn_id is not None else None
        if queue is not None:
            await queue.put(event)  # a newer request or a hang-up cancels a turn waiting here

    def _close_turns(self) -> None:
        """End every open turn's stream now: what it had not yet read is dropped (its request
        has been replaced, or the call is over), and the end is put where it is always read."""
        for queue in self._turns.values():
            while queue.full():
                queue.get_nowait()
            queue.put_nowait(None)
        self._turns.clear()

    async def start(self, call: str | None) -> None:
        await self.session.handle(CallStart(call_id=call))

    async def ask(self, text: str, history: list[Message]) -> asyncio.Queue[AgentEvent | None]:
        """Answer `text`. `history` is the conversation before it as the request tells it
        (what the caller heard: an answer cut short by the caller is cut there); it replaces
        the session's, unless the request carries none (a client sending only its newest
        message relies on the session's). A turn the session will not start (over the call's
        turn rate, or the call has ended) raises TurnRefused."""
        self._close_turns()  # an older request of this call stops here
        if history:
            await self.session.handle(Transcript(tuple((m.role, m.content) for m in history)))
        before, self._refused = self.session.turn_id, None
        await self.session.handle(Utterance(text))
        if self.session.turn_id == before:
            refused = self._refused or ErrorEvent("not_answered", "the turn was not started")
            raise TurnRefused(refused.code, refused.message)
        # The turn's task has not run yet (no await since it was spawned): nothing is missed.
        queue: asyncio.Queue[AgentEvent | None] = asyncio.Queue(self._queue_size)
        self._turns[self.session.turn_id] = queue
        return queue


async def answer_pieces(queue: asyncio.Queue[AgentEvent | None]) -> AsyncIterator[str]:
    while True:
        event = await queue.get()
        if event is None or isinstance(event, Done):
            return
        if isinstance(event, Delta):
            yield event.text


class ChatCalls:
    def __init__(self, service: Service) -> None:
        self._service = service
        self._calls: OrderedDict[str, ChatCall] = OrderedDict()

    async def get(self, body: ChatBody) -> tuple[ChatCall, bool]:
        """The call's session (made on first use) and whether it lives on after the request."""
        key = call_id(body)
        if key is not None and key in self._calls:
            self._calls.move_to_end(key)
            return self._calls[key], True
        call = ChatCall(self._service)
        await call.start(key)
        if key is None:
            return call, False
        self._calls[key] = call
        while len(self._calls) > MAX_CALLS:
            _, old = self._calls.popitem(last=False)
            await old.session.close()
        return call, True

    async def close(self) -> None:
        for call in self._calls.values():
            await call.session.close()
        self._calls.clear()


def chat_router() -> APIRouter:
    router = APIRouter()

    @router.post("/v1/chat/completions", response_model=None)
    async def completions(body: ChatBody, request: Request) -> Any:
        state, key = app_state(request), key_of(request)
        admit(state, key)
        try:
            text, history = caller_turn(body)
        except ChatError as exc:
            raise HTTPException(status_code=400, detail=str(exc)) from exc
        state.begin_chat_turn(key)
        call: ChatCall | None = None
        kept = False

        async def finish() -> None:
            """Once the answer is out, or the request has failed: the turn leaves the count,
            and a session made for this request alone is closed."""
            state.end_chat_turn(key)
            if call is not None and not kept:
                await call.session.close()

        try:
            call, kept = await state.chat_calls.get(body)
            queue = await call.ask(text, history)
        except TurnRefused as exc:
            await finish()
            status = 429 if exc.code == "too_many_turns" else 409
            raise HTTPException(status, exc.message, headers=RETRY) from exc
        except BaseException:
            await finish()
            raise
        chunks = Chunks(body.model)
        if not body.stream:
            try:
                answer = "".join([piece async for piece in answer_pieces(queue)])
            finally:
                await finish()
            return chunks.completion(answer)

        async def events() -> AsyncIterator[str]:
            yield chunks.first()
            async for piece in answer_pieces(queue):
                yield chunks.piece(piece)
            yield chunks.last()

        return Finishing(events(), finish, media_type="text/event-stream")

    return router


RETRY = {"Retry-After": "1"}


def admit(state: AppState, key: str) -> None:
    """Refuse a chat turn the process will not take: 503 while it drains (the frontend
    retries elsewhere), 429 past the call limits, in all or for the key."""
    if state.closing:
        raise HTTPException(503, "the service is restarting", headers=RETRY)
    reason = state.refusal(key)
    if reason is not None:
        log.warning("refused a chat turn: %s", reason)
        raise HTTPException(429, reason, headers=RETRY)


class Finishing(StreamingResponse):
    """A streamed answer that runs `finish` however it ends: read to the end, or the client
    gone mid-stream (a generator's own `finally` would wait for the garbage collector)."""

    def __init__(
        self,
        content: AsyncIterator[str],
        finish: Callable[[], Awaitable[None]],
        media_type: str,
    ) -> None:
        super().__init__(content, media_type=media_type)
        self._finish = finish

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self._finish()
