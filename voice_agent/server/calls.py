"""The call sockets: the native protocol at /v1/calls and Twilio ConversationRelay at
/twilio/relay (with the TwiML that points a number at it), over one socket loop that reads
frames, refuses bad ones with an error frame, and hands events to the call's session."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request, Response, WebSocket
from starlette.websockets import WebSocketDisconnect, WebSocketState

from voice_agent.call.session import CallSession
from voice_agent.errors import ProtocolError
from voice_agent.events import AgentEvent, CallerEvent, Ended
from voice_agent.frontends import native, twilio_relay
from voice_agent.frontends.frames import too_large
from voice_agent.frontends.twilio_signature import twilio_signature_ok
from voice_agent.server.service import Service
from voice_agent.server.state import app_state
from voice_agent.turn import now

log = logging.getLogger(__name__)


router = APIRouter()


@router.post("/twilio/voice")
async def twilio_voice(request: Request) -> Response:
    """TwiML that connects a Twilio call to /twilio/relay (set as the number's voice URL)."""
    base = str(request.base_url).rstrip("/")
    relay = "wss" + base.removeprefix("https").removeprefix("http") + "/twilio/relay"
    twiml = (
        '<?xml version="1.0" encoding="UTF-8"?><Response><Connect>'
        f'<ConversationRelay url="{relay}" interruptible="true" '
        'welcomeGreeting="" /></Connect></Response>'
    )
    return Response(twiml, media_type="application/xml")


@router.websocket("/twilio/relay")
async def twilio_relay_call(ws: WebSocket) -> None:
    state = app_state(ws)
    svc = state.service
    token = svc.settings.twilio_auth_token
    if token and not twilio_signature_ok(
        token, str(ws.url), ws.headers.get("x-twilio-signature", "")
    ):
        log.warning("refused a ConversationRelay upgrade with a bad X-Twilio-Signature")
        await ws.close(code=1008)
        return
    await ws.accept()
    state.active_calls += 1
    try:
        await serve_call(ws, svc, TWILIO_RELAY)
    finally:
        state.active_calls -= 1


@router.websocket("/v1/calls")
async def calls(ws: WebSocket) -> None:
    await ws.accept()
    state = app_state(ws)
    state.active_calls += 1
    try:
        await serve_call(ws, state.service)
    finally:
        state.active_calls -= 1


def calls_router() -> APIRouter:
    """This module's routes, for the app to include."""
    return router


@dataclass(frozen=True, slots=True)
class Codec:
    """A frontend's wire format: a frame to an event (None: nothing to do), an event to the
    frames the frontend gets (possibly none)."""

    decode: Callable[[str, int], CallerEvent | None]
    encode: Callable[[AgentEvent], list[dict[str, Any]]]


def _native_frames(event: AgentEvent) -> list[dict[str, Any]]:
    frame = native.encode(event)
    return [] if frame is None else [frame]


NATIVE = Codec(native.decode, _native_frames)
TWILIO_RELAY = Codec(twilio_relay.decode, twilio_relay.encode)


async def serve_call(ws: WebSocket, svc: Service, codec: Codec = NATIVE) -> None:
    settings = svc.settings
    send_lock = asyncio.Lock()

    async def send(event: AgentEvent) -> None:
        if ws.application_state is not WebSocketState.CONNECTED:
            return
        frames = [json.dumps(f, separators=(",", ":")) for f in codec.encode(event)]
        async with send_lock:
            try:
                for frame in frames:
                    await ws.send_text(frame)
                if isinstance(event, Ended):
                    # The call is over (caller's call.end or the agent hung up): close cleanly.
                    await ws.close(code=1000)
            except (WebSocketDisconnect, RuntimeError, OSError):
                log.debug("call socket closed while sending")

    session = CallSession(svc.call_deps, send, svc.call_config)
    try:
        while not session.ended:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                break
            received_at = now()
            text = message.get("text")
            if text is None:
                await session.error("binary_not_supported", "frames must be JSON text")
                continue
            if too_large(text, settings.max_frame_bytes):
                await session.error(
                    "frame_too_large",
                    f"frame exceeds {settings.max_frame_bytes} bytes",
                )
                continue
            try:
                event = codec.decode(text, settings.max_utterance_chars)
            except ProtocolError as exc:
                await session.error(exc.code, exc.message)
                continue
            if event is None:
                continue
            try:
                await session.handle(event, received_at)
            except Exception:  # task boundary: one bad event must not end the call
                log.exception("call %s failed to handle %s", session.call_id, type(event).__name__)
                await session.error("internal_error", "the service failed to handle that frame")
    except WebSocketDisconnect:
        pass
    finally:
        await session.close()
