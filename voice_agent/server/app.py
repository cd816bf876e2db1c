"""The ASGI app: one Service, its lifespan, and the routers (health, admin, calls, chat,
Retell, the dashboard) that serve it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from voice_agent.fleet.calls import FleetCalls
from voice_agent.server.access import AccessMiddleware, access_policy
from voice_agent.server.admin_routes import admin_router
from voice_agent.server.build import build_service
from voice_agent.server.calls import calls_router
from voice_agent.server.chat import ChatCalls, chat_router
from voice_agent.server.connection import ConnectionHandle
from voice_agent.server.dashboard import dashboard_router, mount_files
from voice_agent.server.health import health_router
from voice_agent.server.limits import BodyLimit
from voice_agent.server.retell import RetellCalls, retell_router
from voice_agent.server.service import Service
from voice_agent.server.state import AppState, process_identity
from voice_agent.settings import Settings

log = logging.getLogger(__name__)


def create_app(
    settings: Settings | None = None, service: Service | None = None, *, owns_service: bool = False
) -> FastAPI:
    """With `service`, the app uses it and leaves closing it to the caller unless
    `owns_service`; otherwise the app builds one from `settings` at start-up and closes it at
    shutdown."""
    if service is None and settings is None:
        raise ValueError("create_app needs settings or a service")

    configured = settings if settings is not None else service.settings  # type: ignore[union-attr]
    policy = access_policy(configured)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = service is None or owns_service
        svc = service if service is not None else await asyncio.to_thread(build_service, settings)  # type: ignore[arg-type]
        state = AppState(
            svc,
            ChatCalls(svc),
            RetellCalls(svc.settings.retell_reconnect_window_s),
            max_calls=svc.settings.max_calls,
            max_calls_per_key=svc.settings.max_calls_per_key,
            calls_changed=svc.prometheus.active_calls.set,
            process=process_identity(svc.settings.workers),
            access=policy,
        )
        app.state.voice_agent = state
        fleet_calls = fleet_call_counts(svc.settings, state)
        if fleet_calls is not None:
            await fleet_calls.start()
        await svc.start()
        log.info("voice-agent ready: mode=%s llm=%s", svc.settings.mode.value, svc.llm.name)
        try:
            yield
        finally:
            state.closing = True
            if fleet_calls is not None:
                await fleet_calls.aclose()
            await state.chat_calls.close()
            await state.retell_calls.close()
            if owned:
                await svc.aclose()

    app = FastAPI(title="voice-agent", lifespan=lifespan)
    app.add_middleware(BodyLimit, max_body_bytes=configured.max_body_bytes)
    app.add_middleware(AccessMiddleware, policy=policy)
    app.add_middleware(ConnectionHandle)  # outermost: it needs the server's own `send`
    routers = (health_router(), admin_router(), calls_router(), chat_router(), retell_router(),
               dashboard_router())  # fmt: skip
    for router in routers:
        app.include_router(router)
    mount_files(app)
    app.add_exception_handler(RequestValidationError, invalid_request)
    return app


async def invalid_request(request: Request, exc: Exception) -> JSONResponse:
    """422 naming what is wrong and where, without echoing the input back: it may hold text
    that cannot be encoded (a lone surrogate made FastAPI's own answer a 500), a caller's data,
    or a megabyte of it."""
    errors = exc.errors() if isinstance(exc, RequestValidationError) else []
    detail = [
        {
            "loc": [str(part) for part in e.get("loc", ())],
            "msg": e.get("msg"),
            "type": e.get("type"),
        }
        for e in errors
    ]
    return JSONResponse({"detail": detail}, status_code=422)


def fleet_call_counts(settings: Settings, state: AppState) -> FleetCalls | None:
    """With Redis and a per-key limit, the limit counts the key's calls on every process."""
    if not settings.redis_url or settings.max_calls_per_key <= 0:
        return None
    counts = FleetCalls(
        settings.redis_url, lambda: state.per_key, timeout_s=settings.redis_timeout_s
    )
    state.elsewhere = lambda key: counts.others[key]
    return counts
