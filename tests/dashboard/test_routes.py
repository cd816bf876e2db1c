"""The dashboard's routes behind API keys: the page and its files load with no key (they hold
no data), the data needs one; and the vendored chart library is the version the lock pins."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from voice_agent.server.service import Service

from ..conftest import call

ROOT = Path(__file__).resolve().parents[2]
VIEWER = "viewer-key-0123456789abcdef"
KEYS = {"VOICE_AGENT_API_KEYS": f"viewer:{VIEWER}"}


@pytest.mark.model
async def test_the_page_is_open_and_its_data_needs_a_key(
    make_service: Callable[..., Service], running: Any
) -> None:
    service = make_service(**KEYS)
    async with running(service) as url, httpx.AsyncClient(base_url=url) as http:
        page = await http.get("/dashboard")
        script = await http.get("/dashboard/files/app.js")
        chart_library = await http.get("/dashboard/files/vendor/uPlot.iife.min.js")
        access = (await http.get("/dashboard/access")).json()
        refused = await http.get("/v1/dashboard/live")
        # Sent as written (httpx would fold a plain "../"): the files' folder holds it in.
        outside = await http.get("/dashboard/files/..%2F..%2Fsettings.py")
        live = (await http.get("/v1/dashboard/live", headers={"X-API-Key": VIEWER})).json()
        missing = await http.get("/v1/dashboard/calls/nope", headers={"X-API-Key": VIEWER})
    assert page.status_code == 200 and "<title>voice-agent dashboard</title>" in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert script.status_code == 200 and chart_library.status_code == 200
    assert access == {"keys_required": True}
    assert refused.status_code == 401 and outside.status_code == 404
    assert live["mode_now"] == "enabled" and live["flows"] == sorted(service.flows.flows)
    assert live["quality_lines"]["poor"] < live["quality_lines"]["baseline"]
    assert missing.status_code == 404


@pytest.mark.model
async def test_live_lists_the_call_on_the_line_and_its_turns(
    make_service: Callable[..., Service], running: Any
) -> None:
    service = make_service()
    async with running(service) as url, call(url) as client:
        await client.start(call_id="on-the-line")
        await client.ask("Hi there")
        async with httpx.AsyncClient(base_url=url) as http:
            live = (await http.get("/v1/dashboard/live")).json()
            turns = (await http.get("/v1/dashboard/calls/on-the-line")).json()
    assert live["active_calls"] == 1
    assert [c["call_id"] for c in live["calls"]["active"]] == ["on-the-line"]
    assert [t["question"] for t in turns["turn_records"]] == ["Hi there"]
    assert turns["turn_records"][0]["source"] == "quick"


def test_the_vendored_chart_library_is_the_locked_version() -> None:
    lock = json.loads((ROOT / "web/dashboard/package-lock.json").read_text())
    pinned = json.loads((ROOT / "web/dashboard/package.json").read_text())["dependencies"]
    locked = lock["packages"]["node_modules/uplot"]["version"]
    vendored = (ROOT / "voice_agent/data/dashboard/vendor/uPlot.iife.min.js").read_text()
    header = re.match(r"/\*! https://github.com/leeoniya/uPlot \(v([\d.]+)\) \*/", vendored)
    assert header is not None and header.group(1) == locked == pinned["uplot"]
