"""`/retell/llm/{call_id}`: Retell's custom LLM WebSocket, driving one call session.

On open the service sends its config frame (asking for call details and auto-reconnect), waits
a bounded time for `call_details` so the call's metadata reaches the flow, then answers the
greeting as response 0. Each `response_required` / `reminder_required` starts a response under
its id: the session's turn for it streams `response` frames, and work for the older id stops.
Retell keeps the transcript; the session's history follows it. When the socket drops without
the call having ended, the session is kept for `VOICE_AGENT_RETELL_RECONNECT_WINDOW_S`: Retell
reconnecting to the same call id gets it back, its place in the flow included, without a second
greeting. A reconnect after that window starts a new session, also without a greeting.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import OrderedDict
from dataclasses import replace
from typing import Any

from fastapi import APIRouter, WebSocket
from starlette.websockets import WebSocketDisconnect, WebSocketState

from voice_agent.call.session import CallSession
from voice_agent.errors import ProtocolError
from voice_agent.events import AgentEvent, CallStart, Ended, ErrorEvent
from voice_agent.frontends import retell
from voice_agent.frontends.frames import too_large
from voice_agent.server.service import Service
from voice_agent.server.state import app_state
from voice_agent.tasks import TaskScope

log = logging.getLogger(__name__)

RECENT_CALLS = 1000  # call ids remembered so that a reconnect is not greeted twice


class RetellCall:
    def __init__(self, ws: WebSocket, service: Service) -> None:
        self._ws = ws
        self._settings = service.settings
        self._responses = retell.Responses()
        # Frames leave in order, and content of an old id never follows a newer request.
        self._lock = asyncio.Lock()
        config = replace(service.call_config, frontend_reminders=True)
        self.session = CallSession(service.call_deps, self._send, config)
        self._hang_up = False  # the call ended with no response left to carry end_call

    async def _write(self, frames: list[dict[str, Any]]) -> None:
        if self._ws.application_state is not WebSocketState.CONNECTED:
            return
        try:
            for frame in frames:
                await self._ws.send_text(json.dumps(frame, separators=(",", ":")))
        except (WebSocketDisconnect, RuntimeError, OSError):
            log.debug("Retell socket closed while sending")

    async def _send(self, event: AgentEvent) -> None:
        if isinstance(event, ErrorEvent):
            log.warning("Retell call %s: %s (%s)", self.session.call_id, event.message, event.code)
            return
        async with self._lock:
            frames = self._responses.encode(event)
            if isinstance(event, Ended) and not frames:
                self._hang_up = True
            await self._write(frames)

    async def attach(self, ws: WebSocket) -> None:
        """Carry the session over to Retell's new socket: responses are counted afresh, and
        whatever the old socket's turn still says is dropped."""
        async with self._lock:
            self._ws = ws
            self._responses = retell.Responses()
            self._hang_up = False

    async def run(self, call_id: str, resumed: bool) -> None:
        await self._write([retell.CONFIG])
        metadata, pending = await self._call_details()
        flow = metadata.pop("flow", None)
        async with self._lock:
            self._responses.begin(0, self.session.turn_id + 1)
        if not self.session.started:
            start = CallStart(call_id, str(flow) if flow else None, metadata, resume=resumed)
            await self.session.handle(start)
            if not self.session.started:
                log.error("Retell call %s could not start (flow %r)", call_id, flow)
                await self._ws.close(code=1011)
                return
        await self._finish_if_silent()
        if pending is not None:
            await self._on_text(pending)
        loop = asyncio.get_running_loop()
        close_at: float | None = None  # once the call has ended: when to stop waiting for Retell
        while True:
            if self._hang_up:
                await self._ws.close(code=1000)  # Retell hangs up on a 1000 close
                return
            if self.session.ended and close_at is None:
                close_at = loop.time() + self._settings.retell_end_grace_s
            try:
                async with asyncio.timeout_at(close_at):
                    message = await self._ws.receive()
            except TimeoutError:
                await self._ws.close(code=1000)
                return
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text")
            if text is None:
                log.warning("Retell call %s sent a binary frame; ignored", call_id)
                continue
            await self._on_text(text)

    async def _call_details(self) -> tuple[dict[str, Any], str | None]:
        """The metadata of the call_details frame if it comes first within the wait, and the
        frame that came instead (handled after the start)."""
        try:
            async with asyncio.timeout(self._settings.retell_details_wait_s):
                message = await self._ws.receive()
        except TimeoutError:
            return {}, None
        if message["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(message.get("code", 1000))
        text = message.get("text")
        if text is None:
            return {}, None
        try:
            frame = retell.decode(text, self._settings.max_utterance_chars)
        except ProtocolError:
            return {}, text
        if isinstance(frame, retell.CallDetails):
            return frame.metadata, None
        return {}, text

    async def _on_text(self, text: str) -> None:
        settings = self._settings
        if too_large(text, settings.max_frame_bytes):
            log.warning("Retell call %s: frame over %d bytes", self.session.call_id, len(text))
            return
        try:
            frame = retell.decode(text, settings.max_utterance_chars)
        except ProtocolError as exc:
            # Retell has no error frame: log, and go on with the call.
            log.warning("Retell call %s: %s (%s)", self.session.call_id, exc.message, exc.code)
            return
        try:
            await self._on_frame(frame)
        except Exception:  # task boundary: one bad frame must not end the call
            log.exception("Retell call %s failed to handle %s", self.session.call_id, frame)

    async def _on_frame(self, frame: retell.RetellFrame) -> None:
        if isinstance(frame, retell.Ping):
            async with self._lock:
                await self._write([{"response_type": "ping_pong", "timestamp": frame.timestamp}])
        elif isinstance(frame, retell.CallDetails):
            log.debug("Retell call %s: call_details after the start; ignored", self.session.call_id)
        elif isinstance(frame, retell.Update):
            for event in frame.events:
                await self.session.handle(event)
        else:
            async with self._lock:
                newer = self._responses.begin(frame.response_id, self.session.turn_id + 1)
            if not newer:
                call = self.session.call_id
                log.info("Retell call %s: stale response_id %d", call, frame.response_id)
                return
            for event in frame.events:
                await self.session.handle(event)
            await self._finish_if_silent()

    async def _finish_if_silent(self) -> None:
        """Close the current response with empty content when no turn was started for it."""
        async with self._lock:
            first = self._responses.first_turn
            if self.session.turn_id < first and not self.session.ended:
                await self._write(self._responses.complete())


class RetellCalls:
    """Call ids seen lately (a socket opened again for one of them is a reconnect), and the
    sessions whose socket dropped, each kept until Retell reconnects or its window passes."""

    def __init__(self, reconnect_window_s: float) -> None:
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._held: dict[str, tuple[RetellCall, asyncio.Task[None]]] = {}
        self._window_s = reconnect_window_s
        self._tasks = TaskScope("retell-held")

    def take(self, call_id: str) -> RetellCall | None:
        """The session held for this call id, if its socket dropped within the window."""
        held = self._held.pop(call_id, None)
        if held is None:
            return None
        call, expiry = held
        expiry.cancel()
        return call

    async def release(self, call_id: str, call: RetellCall) -> None:
        """The socket is gone: hold a live session for a reconnect, close an ended one."""
        if call.session.ended or not call.session.started or self._window_s <= 0:
            await call.session.close()
            return
        if len(self._held) >= RECENT_CALLS:
            await call.session.close()
            return
        expiry = self._tasks.spawn(self._expire(call_id, call), name=f"hold-{call_id}")
        self._held[call_id] = (call, expiry)

    async def _expire(self, call_id: str, call: RetellCall) -> None:
        await asyncio.sleep(self._window_s)
        if self._held.get(call_id, (None,))[0] is call:
            del self._held[call_id]
            await call.session.close()

    async def close(self) -> None:
        await self._tasks.cancel_all(1.0)
        for call, _ in self._held.values():
            await call.session.close()
        self._held.clear()

    def opened(self, call_id: str) -> bool:
        """Note the call; True when it was seen before."""
        seen = call_id in self._seen
        self._seen[call_id] = None
        self._seen.move_to_end(call_id)
        while len(self._seen) > RECENT_CALLS:
            self._seen.popitem(last=False)
        return seen


def retell_router() -> APIRouter:
    router = APIRouter()

    @router.websocket("/retell/llm/{call_id}")
    async def retell_llm(ws: WebSocket, call_id: str) -> None:
        state = app_state(ws)
        svc = state.service
        await ws.accept()
        calls = state.retell_calls
        call_id = call_id[:128]
        resumed = calls.opened(call_id)
        call = calls.take(call_id)
        if call is None:
            call = RetellCall(ws, svc)
        else:
            await call.attach(ws)
            log.info("Retell call %s: reconnected; the session goes on", call_id)
        state.active_calls += 1
        try:
            await call.run(call_id, resumed)
        except WebSocketDisconnect:
            pass
        finally:
            state.active_calls -= 1
            await calls.release(call_id, call)

    return router
