"""The ASGI app: the native call WebSocket, ingest and health endpoints around one Service."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Header, HTTPException, Request, Response, WebSocket
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel, Field
from starlette.websockets import WebSocketDisconnect, WebSocketState

from voice_agent.call.session import CallSession
from voice_agent.errors import KnowledgeBaseError, ProtocolError
from voice_agent.events import AgentEvent, CallerEvent, Ended
from voice_agent.flags import FlagError, FlagsPatch
from voice_agent.frontends import native, twilio_relay
from voice_agent.frontends.frames import too_large
from voice_agent.frontends.twilio_signature import twilio_signature_ok
from voice_agent.rag.documents import Document
from voice_agent.server import admin
from voice_agent.server.build import build_service
from voice_agent.server.chat import ChatCalls, chat_router
from voice_agent.server.explain import ExplainError, explain
from voice_agent.server.retell import RetellCalls, retell_router
from voice_agent.server.service import Service
from voice_agent.settings import Settings
from voice_agent.tasks import TaskScope
from voice_agent.turn import now

log = logging.getLogger(__name__)

MAX_INGEST_DOCUMENTS = 1000


class IngestDocument(BaseModel):
    id: str = Field(min_length=1, max_length=256)
    title: str | None = Field(default=None, max_length=512)
    text: str = Field(min_length=1, max_length=200_000)


class ExplainBody(BaseModel):
    text: str = Field(max_length=2000)
    flow: str | None = None
    state: str | None = None


class QualityBody(BaseModel):
    question: str = Field(min_length=1, max_length=2000)
    answer: str = Field(min_length=1, max_length=8000)
    context: str | list[str] | None = Field(default=None)


class IngestBody(BaseModel):
    documents: list[IngestDocument] = Field(min_length=1, max_length=MAX_INGEST_DOCUMENTS)


def create_app(
    settings: Settings | None = None, service: Service | None = None, *, owns_service: bool = False
) -> FastAPI:
    """With `service`, the app uses it and leaves closing it to the caller unless
    `owns_service`; otherwise the app builds one from `settings` at start-up and closes it at
    shutdown."""
    if service is None and settings is None:
        raise ValueError("create_app needs settings or a service")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = service is None or owns_service
        svc = service if service is not None else await asyncio.to_thread(build_service, settings)  # type: ignore[arg-type]
        app.state.service = svc
        app.state.active_calls = 0
        app.state.chat_calls = ChatCalls(svc)
        app.state.retell_calls = RetellCalls(svc.settings.retell_reconnect_window_s)
        await svc.start()
        log.info("voice-agent ready: mode=%s llm=%s", svc.settings.mode.value, svc.llm.name)
        try:
            yield
        finally:
            app.state.closing = True
            await app.state.chat_calls.close()
            await app.state.retell_calls.close()
            if owned:
                await svc.aclose()

    app = FastAPI(title="voice-agent", lifespan=lifespan)
    app.include_router(chat_router())
    app.include_router(retell_router())

    @app.get("/healthz")
    async def healthz() -> dict[str, object]:
        svc: Service = app.state.service
        return {
            "status": "ok",
            "mode": svc.settings.mode.value,
            "llm": svc.llm.name,
            "breaker": svc.breaker.state,
            "llm_process": svc.llm_status(),
            "encoder_precision": svc.encoder.precision,
            "encoder_runtime": svc.encoder.runtime,
            "knowledge": {
                "documents": svc.knowledge.document_count,
                "chunks": svc.knowledge.chunk_count,
                "version": svc.knowledge.version,
                "fingerprint": svc.knowledge.fingerprint,
            },
            "cache": admin.cache_status(svc),
            "latency_ms": svc.latency.snapshot(),
            "quality": svc.quality.snapshot() if svc.quality is not None else None,
            "flows": sorted(svc.flows.flows),
            "default_flow": svc.flows.default,
            "active_calls": app.state.active_calls,
        }

    @app.get("/health")
    async def health() -> dict[str, object]:
        """Live stats over the last turns, for people and dashboards."""
        svc: Service = app.state.service
        return {"status": "ok", "active_calls": app.state.active_calls, **admin.live_stats(svc)}

    @app.get("/ready")
    async def ready() -> Response:
        """For readiness probes: 200 once models are loaded and until shutdown begins. A local
        model that is restarting does not take the service out: templates and the cache go on
        answering, and LLM turns get the fallback line until it is back (`llm`)."""
        svc: Service = app.state.service
        llm = svc.llm_status()
        body: dict[str, object] = {"ready": not getattr(app.state, "closing", False)}
        if llm is not None:
            body["llm"] = llm["state"]
        return Response(
            json.dumps(body, separators=(",", ":")),
            status_code=200 if body["ready"] else 503,
            media_type="application/json",
        )

    @app.websocket("/v1/telemetry")
    async def telemetry(ws: WebSocket) -> None:
        """Every finished turn as JSON, live."""
        await ws.accept()
        svc: Service = app.state.service
        queue = svc.stream.subscribe()
        tasks = TaskScope("telemetry-ws")

        async def pump() -> None:
            while True:
                await ws.send_text(await queue.get())

        tasks.spawn(pump(), name="send")
        try:
            # Reading notices the client leaving, even when no turn comes to send.
            while (await ws.receive())["type"] != "websocket.disconnect":
                pass
        except (WebSocketDisconnect, RuntimeError, OSError):
            pass
        finally:
            svc.stream.unsubscribe(queue)
            await tasks.cancel_all(1.0)

    @app.get("/metrics")
    async def metrics() -> Response:
        svc: Service = app.state.service
        return Response(svc.prometheus.render(), media_type=CONTENT_TYPE_LATEST)

    @app.post("/v1/explain")
    async def explain_text(body: ExplainBody) -> dict[str, Any]:
        try:
            return await explain(app.state.service, body.text, body.flow, body.state)
        except ExplainError as exc:
            raise HTTPException(status_code=422, detail=str(exc)) from exc

    @app.post("/v1/quality/score")
    async def quality_score(body: QualityBody) -> dict[str, Any]:
        """Why an answer scores what it scores: the total and each part."""
        svc: Service = app.state.service
        return await admin.score(svc, body.question, body.answer, body.context)

    @app.get("/v1/admin/flags")
    async def get_flags() -> dict[str, Any]:
        svc: Service = app.state.service
        assert svc.flags is not None
        return svc.flags.as_dict()

    @app.patch("/v1/admin/flags")
    async def patch_flags(
        patch: FlagsPatch, x_actor: str | None = Header(default=None, max_length=200)
    ) -> dict[str, Any]:
        """Change flags from the next turn on; `X-Actor` names who did it in the audit log."""
        svc: Service = app.state.service
        assert svc.flags is not None
        try:
            svc.flags.change(patch, who=x_actor or "unknown")
        except FlagError as exc:
            raise HTTPException(status_code=422, detail=str(exc)) from exc
        except OSError as exc:
            detail = f"the audit log cannot be written ({exc}); the change was not made"
            raise HTTPException(status_code=503, detail=detail) from exc
        return svc.flags.as_dict()

    @app.post("/v1/admin/cache/flush")
    async def flush_cache() -> dict[str, object]:
        svc: Service = app.state.service
        return await admin.flush_cache(svc)

    @app.post("/v1/ingest")
    async def ingest(body: IngestBody) -> dict[str, object]:
        svc: Service = app.state.service
        docs = [
            Document(d.id.strip(), (d.title or d.id).strip(), d.text.strip())
            for d in body.documents
        ]
        try:
            index = await svc.knowledge.add(docs)
        except KnowledgeBaseError as exc:
            raise HTTPException(status_code=422, detail=str(exc)) from exc
        dropped = await admin.after_ingest(svc)
        return {
            "added": len(docs),
            "documents": svc.knowledge.document_count,
            "chunks": len(index.chunks),
            "version": index.version,
            "fingerprint": svc.knowledge.fingerprint,
            "cache_dropped": dropped,
        }

    @app.post("/twilio/voice")
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

    @app.websocket("/twilio/relay")
    async def twilio_relay_call(ws: WebSocket) -> None:
        svc: Service = app.state.service
        token = svc.settings.twilio_auth_token
        if token and not twilio_signature_ok(
            token, str(ws.url), ws.headers.get("x-twilio-signature", "")
        ):
            log.warning("refused a ConversationRelay upgrade with a bad X-Twilio-Signature")
            await ws.close(code=1008)
            return
        await ws.accept()
        app.state.active_calls += 1
        try:
            await _serve_call(ws, svc, TWILIO_RELAY)
        finally:
            app.state.active_calls -= 1

    @app.websocket("/v1/calls")
    async def calls(ws: WebSocket) -> None:
        await ws.accept()
        svc: Service = app.state.service
        app.state.active_calls += 1
        try:
            await _serve_call(ws, svc)
        finally:
            app.state.active_calls -= 1

    return app


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


async def _serve_call(ws: WebSocket, svc: Service, codec: Codec = NATIVE) -> None:
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
