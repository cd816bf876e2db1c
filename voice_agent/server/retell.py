"""`/retell/llm/{call_id}`: Retell's custom LLM WebSocket, one call session each, on the one
socket loop (sockets.py) with Retell's codec (frontends/retell.py: the config frame on open, the
wait for the call's details, responses by id, pings, the end).

When the socket drops without the call having ended, the session is kept for
`VOICE_AGENT_RETELL_RECONNECT_WINDOW_S`: Retell reconnecting to the same call id gets it back,
its place in the flow included, without a second greeting. A reconnect after that window starts
a new session, also without a greeting.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict

from fastapi import APIRouter, WebSocket
from starlette.websockets import WebSocketDisconnect

from voice_agent.frontends.retell import RetellCodec
from voice_agent.server.sockets import SocketCall, open_call, refused, run_call
from voice_agent.server.state import app_state
from voice_agent.tasks import TaskScope

log = logging.getLogger(__name__)

RECENT_CALLS = 1000  # call ids remembered so that a reconnect is not greeted twice


class RetellCalls:
    """Call ids seen lately (a socket opened again for one of them is a reconnect), and the
    sessions whose socket dropped, each kept until Retell reconnects or its window passes."""

    def __init__(self, reconnect_window_s: float) -> None:
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._held: dict[str, tuple[SocketCall, asyncio.Task[None]]] = {}
        self._window_s = reconnect_window_s
        self._tasks = TaskScope("retell-held")

    def take(self, call_id: str) -> SocketCall | None:
        """The session held for this call id, if its socket dropped within the window."""
        held = self._held.pop(call_id, None)
        if held is None:
            return None
        call, expiry = held
        expiry.cancel()
        return call

    async def release(self, call_id: str, call: SocketCall) -> None:
        """The socket is gone: hold a live session for a reconnect, close an ended one."""
        if call.session.ended or not call.session.started or self._window_s <= 0:
            await call.session.close()
            return
        if len(self._held) >= RECENT_CALLS:
            await call.session.close()
            return
        expiry = self._tasks.spawn(self._expire(call_id, call), name=f"hold-{call_id}")
        self._held[call_id] = (call, expiry)

    async def _expire(self, call_id: str, call: SocketCall) -> None:
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
        settings = svc.settings
        await ws.accept()
        if await refused(ws, state):
            return
        calls = state.retell_calls
        call_id = call_id[:128]
        resumed = calls.opened(call_id)
        call = calls.take(call_id)
        codec = RetellCodec(
            call_id,
            settings.max_utterance_chars,
            settings.retell_details_wait_s,
            settings.retell_end_grace_s,
            resumed=resumed,
            started=call is not None,
        )
        if call is None:
            call = open_call(ws, codec, svc)
        else:
            await call.socket.attach(ws, codec)
            log.info("Retell call %s: reconnected; the session goes on", call_id)
        state.track(call)
        try:
            await run_call(call, settings.max_frame_bytes, settings.idle_timeout_s)
        except WebSocketDisconnect:
            pass
        finally:
            state.untrack(call)
            await calls.release(call_id, call)

    return router
