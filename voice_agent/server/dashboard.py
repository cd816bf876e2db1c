"""The live dashboard: `/dashboard` (the page and its files, served with no key: they hold no
data) and `/v1/dashboard/*` (the data, behind the API keys like every other endpoint): the
aggregated points since the page's last one, the calls, one call's turns, the live shadow /
canary comparison. The page changes flags through `PATCH /v1/admin/flags` (an admin key,
audited) and talks to the service through `/v1/calls` like any frontend."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import FileResponse
from starlette.staticfiles import StaticFiles

from voice_agent.server.state import app_state

PAGE = Path(__file__).resolve().parent.parent / "data" / "dashboard"
CALLS_SHOWN = 50  # active and recent calls listed; the count says how many there are

router = APIRouter()


# The page runs only its own files: no inline script, no other origin, never in a frame (the
# key it keeps for the tab is then out of reach of anything injected). Styles may be set from
# script (uPlot sizes its canvas so).
POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'"
)


@router.get("/dashboard", include_in_schema=False)
async def page() -> FileResponse:
    headers = {"Cache-Control": "no-cache", "Content-Security-Policy": POLICY,
               "X-Content-Type-Options": "nosniff"}  # fmt: skip
    return FileResponse(PAGE / "index.html", headers=headers)


@router.get("/dashboard/access", include_in_schema=False)
async def access(request: Request) -> dict[str, bool]:
    """Whether the page must ask for a key before it asks for data (so it never has to learn
    it from a refusal)."""
    return {"keys_required": app_state(request).access.enabled}


@router.get("/v1/dashboard/live")
async def live(request: Request, after: float = Query(0.0)) -> dict[str, Any]:
    state = app_state(request)
    svc = state.service
    board = svc.observers.board
    flags = svc.flags.current
    active_ids = {str(c.session.call_id) for c in state.calls if c.session.call_id is not None}
    quality = svc.quality
    return {
        "now": time.time(),
        "process": state.process,
        "points": board.points_after(after),
        "calls": board.calls(active_ids, CALLS_SHOWN),
        "active_calls": state.active_calls,
        "alerts": list(board.alerts),
        "flags": svc.flags.as_dict(),
        "mode_now": flags.mode,
        "quality_lines": quality.lines(),
        "quality": quality.snapshot(),
        "flows": sorted(svc.flows.flows),
        "default_flow": svc.flows.default,
    }


@router.get("/v1/dashboard/calls/{call_id}")
async def call_turns(call_id: str, request: Request) -> dict[str, Any]:
    found = app_state(request).service.observers.board.call(call_id)
    if found is None:
        raise HTTPException(404, f"no recent call {call_id!r}")
    return found


@router.get("/v1/dashboard/comparison")
async def comparison(request: Request) -> dict[str, Any]:
    """What `voice-agent report` prints, over the recent turns this process served."""
    return await app_state(request).service.observers.board.comparison()


def dashboard_router() -> APIRouter:
    return router


def mount_files(app: Any) -> None:
    """The page's scripts, styles and the vendored chart library."""
    app.mount("/dashboard/files", StaticFiles(directory=PAGE), name="dashboard-files")
