"""The one socket loop every WebSocket frontend's call runs on. It reads frames, refuses bad
ones through the session's error event (which the codec turns into an error frame or a log
line), hands events to the call's session, and writes the codec's frames in order. What differs
between frontends is the codec's (frontends/codec.py); this module knows no vendor's frames."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, MutableMapping
from dataclasses import dataclass, replace
from typing import Any

from fastapi import WebSocket
from starlette.websockets import WebSocketDisconnect, WebSocketState

from voice_agent.call.session import CallSession
from voice_agent.call.voice import VoiceCall
from voice_agent.errors import ProtocolError
from voice_agent.events import AgentEvent, CallerEvent, CallerSilent, CallStart, Dtmf, Utterance
from voice_agent.frontends.codec import Codec, Inbound
from voice_agent.frontends.frames import too_large
from voice_agent.server.access import LOCAL, key_of
from voice_agent.server.connection import drop_connection
from voice_agent.server.service import Service
from voice_agent.server.state import AppState
from voice_agent.turn import now

log = logging.getLogger(__name__)

# Caller events that start a turn: not taken while the client is not reading what it was sent.
STARTS_WORK = (Utterance, Dtmf, CallerSilent)
FAILED_START = 1011  # the close code for a call the frontend cannot start again


class CallSocket:
    """A call's socket and codec. Frames leave one event at a time, in order; a reconnecting
    frontend brings a new socket and codec (`attach`) while the session goes on.

    A client that stops reading fills its send buffer (the WebSocket's write limit, then the
    kernel's), and a write waits. While one waits the socket is `backed_up`: the loop starts
    no new work for the call. A write still waiting after `send_timeout_s` means the client
    has stopped reading: the connection is dropped, its session closed, and its memory freed.
    """

    def __init__(self, ws: WebSocket, codec: Codec, send_timeout_s: float = 5.0) -> None:
        self.ws = ws
        self.codec = codec
        self.close_code = 1000  # 1001 when the service is going away (a drain)
        self.send_timeout_s = send_timeout_s
        self.stalled = False  # the client stopped reading: nothing more is sent
        self._writing = False
        self._lock = asyncio.Lock()

    @property
    def backed_up(self) -> bool:
        """A frame is waiting for the client to read it (a write that does not have to wait
        finishes without yielding), or the client has stopped reading altogether."""
        return self._writing or self.stalled

    async def send(self, event: AgentEvent) -> None:
        """The session's sender: the event as the codec's frames."""
        async with self._lock:
            out = self.codec.encode(event)
            await self._write(out.frames)
            if out.close:
                await self._close(self.close_code)

    async def write(self, frames: Iterable[str]) -> None:
        async with self._lock:
            await self._write(frames)

    async def close(self, code: int, reason: str = "") -> None:
        async with self._lock:
            await self._close(code, reason)

    async def attach(self, ws: WebSocket, codec: Codec) -> None:
        async with self._lock:
            self.ws, self.codec = ws, codec

    async def _write(self, frames: Iterable[str]) -> None:
        if self.stalled or self.ws.application_state is not WebSocketState.CONNECTED:
            return
        self._writing = True
        try:
            for frame in frames:
                async with asyncio.timeout(self.send_timeout_s):
                    await self.ws.send_text(frame)
        except TimeoutError:
            self._give_up()
        except (WebSocketDisconnect, RuntimeError, OSError):
            log.debug("call socket closed while sending")
        finally:
            self._writing = False

    def _give_up(self) -> None:
        """The client has not read a frame for the send timeout. A close frame would wait
        behind the unread ones, so the connection is dropped: the loop's receive sees it."""
        self.stalled = True
        log.warning("closing a call socket: the client has not read for %s s", self.send_timeout_s)
        if not drop_connection(self.ws):
            log.warning("the server cannot drop the connection; the client's timeouts will")

    async def _close(self, code: int, reason: str = "") -> None:
        if self.stalled or self.ws.application_state is not WebSocketState.CONNECTED:
            return
        try:
            async with asyncio.timeout(self.send_timeout_s):
                await self.ws.close(code=code, reason=reason)
        except TimeoutError:
            self._give_up()
        except (RuntimeError, OSError):
            log.debug("call socket already closed")


@dataclass(frozen=True, slots=True)
class SocketCall:
    """One call served over a socket: the session, and the socket its events go out on; for
    a frontend that sends audio, the voice layer between them."""

    socket: CallSocket
    session: CallSession
    key: str = LOCAL  # the API key's name it was opened with (limits per key)
    voice: VoiceCall | None = None

    async def handle(self, event: CallerEvent, received_at: float | None) -> None:
        if self.voice is not None:
            await self.voice.handle(event, received_at)
        else:
            await self.session.handle(event, received_at)

    async def close(self) -> None:
        # The session first: its turn, still streaming words, must not hand the voice layer
        # new work once that is closed.
        await self.session.close()
        if self.voice is not None:
            await self.voice.close()


TRY_AGAIN_LATER = 1013


async def refused(ws: WebSocket, state: AppState) -> bool:
    """A new call the process will not take, closed at once with 1013 (try again later) and
    the reason, so the frontend places it on another instance: the service is draining, or
    at its limit of calls, in all or for the caller's key."""
    reason = state.refusal(key_of(ws))
    if reason is None:
        return False
    log.warning("refused a call: %s", reason)
    await ws.close(code=TRY_AGAIN_LATER, reason=reason)
    return True


def open_call(ws: WebSocket, codec: Codec, service: Service) -> SocketCall:
    socket = CallSocket(ws, codec, service.settings.send_timeout_s)
    config = replace(service.call_config, frontend_reminders=codec.frontend_reminders)
    if codec.audio and service.speech is not None:
        voice = VoiceCall(service.speech, socket.send)
        session = voice.session = CallSession(service.call_deps, voice.send, config)
        return SocketCall(socket, session, key_of(ws), voice)
    return SocketCall(socket, CallSession(service.call_deps, socket.send, config), key_of(ws))


async def run_call(call: SocketCall, max_frame_bytes: int, idle_timeout_s: float = 0) -> None:
    """Serve the call until the socket closes, the client has sent nothing for
    `idle_timeout_s` (0: no limit), or the call has ended and the codec's linger has passed.
    The session is not closed here: a frontend that reconnects may get it back."""
    socket, session = call.socket, call.session
    await socket.write(socket.codec.opening())
    loop = asyncio.get_running_loop()
    close_at: float | None = None
    heard_at = loop.time()
    while True:
        codec = socket.codec
        if session.ended:
            if codec.linger_s <= 0:
                return
            if close_at is None:
                close_at = loop.time() + codec.linger_s
        wait = codec.wait_s()
        deadlines = [
            close_at,
            None if wait is None else loop.time() + wait,
            heard_at + idle_timeout_s if idle_timeout_s > 0 else None,
        ]
        deadline = min((d for d in deadlines if d is not None), default=None)
        try:
            async with asyncio.timeout_at(deadline):
                message = await socket.ws.receive()
        except TimeoutError:
            if close_at is not None and loop.time() >= close_at:
                await socket.close(1000)
                return
            if idle_timeout_s > 0 and loop.time() >= heard_at + idle_timeout_s:
                await _idle(call, idle_timeout_s)
                return
            if not await _take(call, codec.timed_out(session.turn_id), None, max_frame_bytes):
                return
            continue
        heard_at = loop.time()
        if message["type"] == "websocket.disconnect":
            return
        if not await _on_message(call, message, max_frame_bytes):
            return


async def _idle(call: SocketCall, idle_timeout_s: float) -> None:
    """Nothing from the client for the idle timeout: a started call ends (its frontend is
    told, as for any end); a socket that never started a call is closed."""
    log.info("call %s: nothing received for %s s; ending it", call.session.call_id, idle_timeout_s)
    if call.session.started and not call.session.ended:
        await call.session.end("idle_timeout")
    await call.socket.close(1000, "idle timeout")


async def _on_message(
    call: SocketCall, message: MutableMapping[str, Any], max_frame_bytes: int
) -> bool:
    received_at = now()
    text = message.get("text")
    if text is None:
        await call.session.error("binary_not_supported", "frames must be JSON text")
        return True
    return await _on_text(call, text, received_at, max_frame_bytes)


async def _on_text(call: SocketCall, text: str, received_at: float, max_frame_bytes: int) -> bool:
    session = call.session
    if too_large(text, max_frame_bytes):
        await session.error("frame_too_large", f"frame exceeds {max_frame_bytes} bytes")
        return True
    try:
        inbound = call.socket.codec.decode(text, session.turn_id)
    except ProtocolError as exc:
        await session.error(exc.code, exc.message)
        return True
    except Exception:  # a codec's bug: the frame is refused, the call goes on
        log.exception("call %s: a frame could not be decoded", session.call_id)
        await session.error("invalid_frame", "the frame could not be read")
        return True
    return await _take(call, inbound, received_at, max_frame_bytes)


async def _take(
    call: SocketCall, inbound: Inbound, received_at: float | None, max_frame_bytes: int
) -> bool:
    """Hand one frame's events to the session and send what is owed; False when the socket
    was closed because the call could not start."""
    socket, session = call.socket, call.session
    await socket.write(inbound.replies)
    for event in inbound.events:
        # An audio call's socket is written in bursts of agent audio: a key pressed during one
        # is the caller's, not a sign the phone stopped reading.
        skip = isinstance(event, STARTS_WORK) and not (
            socket.codec.audio and isinstance(event, Dtmf)
        )
        if socket.backed_up and skip:
            log.debug("call %s: not read; %s ignored", session.call_id, type(event).__name__)
            continue
        try:
            await call.handle(event, received_at)
        except Exception:  # task boundary: one bad event must not end the call
            log.exception("call %s failed to handle %s", session.call_id, type(event).__name__)
            await session.error("internal_error", "the service failed to handle that frame")
        if isinstance(event, CallStart) and not session.started:
            if socket.codec.closes_on_failed_start:
                log.warning("call %s could not start (flow %r)", event.call_id, event.flow)
                await socket.close(FAILED_START)
                return False
    await socket.write(socket.codec.settled(session.turn_id, session.ended))
    if inbound.then is not None:
        return await _on_text(call, inbound.then, now(), max_frame_bytes)
    return True
