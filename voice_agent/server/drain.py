"""A graceful stop. On SIGTERM `/ready` turns false at once and new calls are refused (sockets
closed 1013, chat requests 503), so the balancer sends callers elsewhere; the calls in progress
go on, their turns finishing, for up to `VOICE_AGENT_DRAIN_TIMEOUT_S`; the calls still open then
hear the goodbye line and are closed with 1001; then the process exits 0. A second SIGTERM, or
Ctrl-C, stops waiting."""

from __future__ import annotations

import asyncio
import logging
import signal
from types import FrameType

import uvicorn
from fastapi import FastAPI

from voice_agent.server.state import AppState

log = logging.getLogger(__name__)

GOING_AWAY = 1001
CLOSE_WAIT_S = 2.0  # for the goodbyes to go out and the sockets to close


async def drain(state: AppState, timeout_s: float, goodbye: str) -> None:
    state.closing = True
    log.warning("[DRAIN] %d calls in progress; new calls refused; waiting up to %.1f s",
                len(state.calls), timeout_s)  # fmt: skip
    try:
        await asyncio.wait_for(state.idle.wait(), timeout_s)
        log.warning("[DRAIN] every call ended by itself")
        return
    except TimeoutError:
        pass
    remaining = list(state.calls)
    log.warning("[DRAIN] %d calls still open: goodbye and close (1001)", len(remaining))
    for call in remaining:
        call.socket.close_code = GOING_AWAY
        try:
            await call.session.leave(goodbye, "server_shutdown")
        except Exception:  # one call's failure must not keep the others from their goodbye
            log.exception("[DRAIN] call %s: the goodbye failed", call.session.call_id)
        await call.socket.close(GOING_AWAY)  # frontends that keep the socket after the end
    try:
        await asyncio.wait_for(state.idle.wait(), CLOSE_WAIT_S)
    except TimeoutError:
        log.warning("[DRAIN] %d sockets did not close in time", len(state.calls))


class DrainingServer(uvicorn.Server):
    """uvicorn's server, with SIGTERM draining the calls (above) before it stops, and no
    re-raised signal after it: the process exits 0. SIGINT stays uvicorn's."""

    def __init__(self, config: uvicorn.Config, app: FastAPI, timeout_s: float, goodbye: str):
        super().__init__(config)
        self._app = app
        self._timeout_s = timeout_s
        self._goodbye = goodbye
        self._loop: asyncio.AbstractEventLoop | None = None
        self._draining: asyncio.Task[None] | None = None

    async def startup(self, sockets: list[object] | None = None) -> None:  # type: ignore[override]
        self._loop = asyncio.get_running_loop()
        await super().startup(sockets)  # type: ignore[arg-type]

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if sig != signal.SIGTERM or self._loop is None:
            super().handle_exit(sig, frame)
        elif self._draining is None:
            self._loop.call_soon_threadsafe(self._start_drain)
        else:
            self.should_exit = True  # a second SIGTERM: stop waiting

    def _start_drain(self) -> None:
        if self._draining is None and self._loop is not None:
            self._draining = self._loop.create_task(self._drain(), name="drain")

    async def _drain(self) -> None:
        try:
            state: AppState = self._app.state.voice_agent
            await drain(state, self._timeout_s, self._goodbye)
        finally:
            self.should_exit = True
