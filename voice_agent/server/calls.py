"""The call sockets of the native protocol (/v1/calls), Twilio's relay (/twilio/relay) and Twilio's
media streams (/twilio/media), with the TwiML that points a number at either. Each call runs on
the one socket loop (sockets.py) with its frontend's codec."""

from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter, Request, Response, WebSocket
from starlette.websockets import WebSocketDisconnect

from voice_agent.frontends.codec import Codec
from voice_agent.frontends.native import NativeCodec
from voice_agent.frontends.twilio_media import TwilioMediaCodec, start_token
from voice_agent.frontends.twilio_media import twiml as media_twiml
from voice_agent.frontends.twilio_relay import TwilioRelayCodec, twiml
from voice_agent.frontends.twilio_signature import upgrade_signed
from voice_agent.server.access import KEY_IN_START
from voice_agent.server.sockets import open_call, refused, run_call
from voice_agent.server.state import AppState, app_state

log = logging.getLogger(__name__)

START_WAIT_S = 10.0  # how long a Media Streams socket may take to send its keyed `start`


router = APIRouter()


@router.post("/twilio/voice")
async def twilio_voice(request: Request) -> Response:
    """TwiML that connects a Twilio call to /twilio/relay (set as the number's voice URL)."""
    token = request.query_params.get("token")
    return Response(twiml(str(request.base_url), token), media_type="application/xml")


async def refused_unsigned(ws: WebSocket, state: AppState) -> bool:
    """With the account's auth token set, an upgrade without Twilio's signature for its URL is
    closed (1008) before it is accepted."""
    token = state.service.settings.twilio_auth_token
    if token and not upgrade_signed(token, str(ws.url), ws.headers):
        log.warning("refused an upgrade to %s with a bad Twilio signature", ws.url.path)
        await ws.close(code=1008)
        return True
    return False


@router.websocket("/twilio/relay")
async def twilio_relay_call(ws: WebSocket) -> None:
    state = app_state(ws)
    if await refused_unsigned(ws, state):
        return
    await ws.accept()
    await serve_call(ws, state, TwilioRelayCodec(state.service.settings.max_utterance_chars))


@router.post("/twilio/voice-stream")
async def twilio_voice_stream(request: Request) -> Response:
    """TwiML that connects a Twilio call's audio to /twilio/media (Media Streams: the service
    hears and speaks itself), set as the number's voice URL."""
    token = request.query_params.get("token")
    return Response(media_twiml(str(request.base_url), token), media_type="application/xml")


@router.websocket("/twilio/media")
async def twilio_media_call(ws: WebSocket) -> None:
    state = app_state(ws)
    if await refused_unsigned(ws, state):
        return
    if state.service.speech is None:
        log.warning("refused a Media Streams call: speech is off (VOICE_AGENT_SPEECH)")
        await ws.close(code=1011, reason="speech is off")
        return
    await ws.accept()
    replay: tuple[str, ...] = ()
    if ws.scope.get("state", {}).get(KEY_IN_START):
        replay = await keyed_start(ws, state)
        if not replay:
            return
    await serve_call(ws, state, TwilioMediaCodec(replay))


async def keyed_start(ws: WebSocket, state: AppState) -> tuple[str, ...]:
    """Twilio's first frames, up to the `start` that carries the API key as a custom
    parameter; () when the key is missing or wrong (the socket is then closed, 1008)."""
    frames: list[str] = []
    try:
        async with asyncio.timeout(START_WAIT_S):
            while len(frames) < 4:
                raw = await ws.receive_text()
                frames.append(raw)
                is_start, token = start_token(raw)
                if not is_start:
                    continue
                key = state.access.key_for(token) if token else None
                if key is None:
                    break
                ws.scope["state"]["api_key"] = key.name
                return tuple(frames)
    except (TimeoutError, WebSocketDisconnect, KeyError):
        pass
    log.warning("refused a Media Streams call: no valid API key in its start frame")
    await ws.close(code=1008, reason="a valid API key is needed")
    return ()


@router.websocket("/v1/calls")
async def calls(ws: WebSocket) -> None:
    await ws.accept()
    state = app_state(ws)
    await serve_call(ws, state, NativeCodec(state.service.settings.max_utterance_chars))


def calls_router() -> APIRouter:
    """This module's routes, for the app to include."""
    return router


async def serve_call(ws: WebSocket, state: AppState, codec: Codec) -> None:
    """One call on an accepted socket, from its first frame to its session's close."""
    if await refused(ws, state):
        return
    call = open_call(ws, codec, state.service)
    state.track(call)
    try:
        settings = state.service.settings
        await run_call(call, settings.max_frame_bytes, settings.idle_timeout_s)
    except WebSocketDisconnect:
        pass
    finally:
        state.untrack(call)
        await call.close()
