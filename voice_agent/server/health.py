"""Health and observation routes: /healthz (what runs), /health (live figures), /ready (for
readiness probes and the balancer), /metrics (Prometheus) and the live telemetry socket."""

from __future__ import annotations

import json

from fastapi import APIRouter, Request, Response, WebSocket
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.websockets import WebSocketDisconnect

from voice_agent.server.admin import cache_status, live_stats
from voice_agent.server.state import app_state
from voice_agent.tasks import TaskScope

router = APIRouter()


@router.get("/healthz")
async def healthz(request: Request) -> dict[str, object]:
    state = app_state(request)
    svc = state.service
    return {
        "status": "ok",
        "process": state.process,
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
        "cache": cache_status(svc),
        "latency_ms": svc.latency.snapshot(),
        "quality": svc.quality.snapshot(),
        "flows": sorted(svc.flows.flows),
        "default_flow": svc.flows.default,
        "active_calls": state.active_calls,
    }


@router.get("/health")
async def health(request: Request) -> dict[str, object]:
    """Live stats over the last turns, for people and dashboards."""
    state = app_state(request)
    return {
        "status": "ok",
        "process": state.process,
        "active_calls": state.active_calls,
        **live_stats(state.service),
    }


@router.get("/ready")
async def ready(request: Request) -> Response:
    """For readiness probes: 200 once models are loaded and the fast tiers' audio made, until
    shutdown begins, and while the process is under its call limit (503 with the reason
    otherwise). A local
    model that is restarting does not take the service out: templates and the cache go on
    answering, and LLM turns get the fallback line until it is back (`llm`)."""
    state = app_state(request)
    llm = state.service.llm_status()
    warmer = state.service.speech_warmer
    warming = warmer is not None and not warmer.done.is_set()
    body: dict[str, object] = {"ready": not state.closing and not state.full and not warming}
    if state.closing:
        body["reason"] = "draining"
    elif state.full:
        body["reason"] = f"at the limit of {state.max_calls} calls"
    elif warming:
        body["reason"] = "making the fast tiers' audio"
    if llm is not None:
        body["llm"] = llm["state"]
    return Response(
        json.dumps(body, separators=(",", ":")),
        status_code=200 if body["ready"] else 503,
        media_type="application/json",
    )


@router.websocket("/v1/telemetry")
async def telemetry(ws: WebSocket) -> None:
    """Every finished turn as JSON, live."""
    await ws.accept()
    svc = app_state(ws).service
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


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    svc = app_state(request).service
    return Response(svc.prometheus.render(), media_type=CONTENT_TYPE_LATEST)


def health_router() -> APIRouter:
    """This module's routes, for the app to include."""
    return router
