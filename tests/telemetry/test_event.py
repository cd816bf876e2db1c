"""Turn telemetry: [LATENCY], [CACHE] and [TELEMETRY] lines per turn (the last with the answer's
typed outcome), sliding-window percentiles per source in /healthz, and an observer that fails
without failing a turn."""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from voice_agent.server.service import Service
from voice_agent.telemetry import metrics as metrics_export
from voice_agent.telemetry.event import TurnEvent

from ..conftest import call
from ..fakes import FakeLLM, scaled

pytestmark = pytest.mark.model


def lines(caplog: pytest.LogCaptureFixture, tag: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith(tag)]


async def test_every_turn_logs_its_latency_cache_result_and_telemetry(
    make_service: Callable[..., Service], running: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="voice_agent.telemetry")
    service = make_service(FakeLLM(), VOICE_AGENT_RESPONSE_CACHE=True)
    async with running(service) as url:
        async with call(url) as client:
            await client.start(call_id="t-1")
            await client.ask("hello there")
            await client.ask("Do you deliver prescriptions?")
            assert service.cache is not None and await service.cache.drain(scaled(5))
            await client.ask("do you deliver prescriptions")
        async with httpx.AsyncClient(base_url=url) as http:
            health = (await http.get("/healthz")).json()
    latency = lines(caplog, "[LATENCY]")
    assert [line.split("source=")[1].split()[0] for line in latency] == ["quick", "llm", "cache"]
    assert all("call=t-1" in line and "first_token_ms=" in line for line in latency)
    assert "embedding_ms=" in latency[1] and "llm_first_token_ms=" in latency[1]
    cache = lines(caplog, "[CACHE]")
    assert "result=miss" in cache[0] and "result=hit kind=exact" in cache[1]
    records = [json.loads(line.split(" ", 1)[1]) for line in lines(caplog, "[TELEMETRY]")]
    assert [r["source"] for r in records] == ["quick", "llm", "cache"]
    assert records[1]["question"] == "Do you deliver prescriptions?" and records[1]["answer"]
    quick, llm, hit = (r["outcome"] for r in records)
    assert set(quick) == {"intent_score"} and quick["intent_score"] > 0.5
    assert llm == {"cache": "miss"} and hit == {"cache": "hit"}
    assert set(health["latency_ms"]) == {"quick", "llm", "cache"}
    assert health["latency_ms"]["llm"]["first_token"]["count"] == 1


class Broken:
    def turn_served(self, event: TurnEvent) -> None:
        raise RuntimeError("exporter down")


async def test_a_failing_observer_does_not_fail_the_turn(
    make_service: Callable[..., Service], running: Any, caplog: pytest.LogCaptureFixture
) -> None:
    service = make_service(FakeLLM())
    service.telemetry.observers.insert(0, Broken())
    async with running(service) as url, call(url) as client:
        await client.start()
        done = (await client.ask("Do you deliver prescriptions?"))[-1]
    assert done["source"] == "llm" and done["text"]
    assert "telemetry observer Broken failed" in caplog.text
    assert service.latency.snapshot()["llm"]["total"]["count"] == 1


async def test_health_ready_and_the_live_stream_show_turns_as_they_happen(
    make_service: Callable[..., Service], running: Any
) -> None:
    service = make_service(FakeLLM(), VOICE_AGENT_RESPONSE_CACHE=True)
    async with running(service) as url:
        ws_url = url.replace("http://", "ws://") + "/v1/telemetry"
        async with websockets.connect(ws_url) as stream, call(url) as client:
            await asyncio.sleep(scaled(0.1))  # subscribed before the turns
            await client.start()
            await client.ask("hello there")
            await client.ask("What time do you open on Saturday?")
            live = [json.loads(await asyncio.wait_for(stream.recv(), scaled(5))) for _ in range(2)]
        async with httpx.AsyncClient(base_url=url) as http:
            health = (await http.get("/health")).json()
            ready = await http.get("/ready")
    assert [(e["type"], e["source"]) for e in live] == [("turn", "quick"), ("turn", "cache")]
    assert ready.status_code == 200 and ready.json() == {"ready": True}
    assert health["tier_mix"] == {"cache": 0.5, "quick": 0.5}
    assert health["cache_hit_rate"] == 1.0
    assert health["latency_ms"]["cache"]["first_token"]["count"] == 1
    assert health["flags"]["mode"] == "enabled" and "quality" in health
    assert {(r["source"], r["state"], r["mode"]) for r in health["latency_by_state_and_mode"]} == {
        ("quick", "answer", "enabled"),
        ("cache", "answer", "enabled"),
    }


DASHBOARDS = Path(__file__).resolve().parents[2] / "docs" / "dashboards"


async def test_dashboards_and_alert_rules_name_only_metrics_the_service_exports(
    make_service: Callable[..., Service], running: Any
) -> None:
    service = make_service(FakeLLM(), VOICE_AGENT_RESPONSE_CACHE=True)
    async with running(service) as url:
        async with call(url) as client:
            await client.start()
            await client.ask("Do you deliver prescriptions?")
            assert service.quality is not None and await service.quality.drain(scaled(5))
        async with httpx.AsyncClient(base_url=url) as http:
            scraped = (await http.get("/metrics")).text
    docs = DASHBOARDS
    rules = (docs / "prometheus-rules.yaml").read_text()
    for name in set(re.findall(r"\bvoice_[a-z_]+", rules)):
        # A sample, or for a counter nothing has counted yet (the alerts) its TYPE line.
        assert re.search(rf"^(# TYPE )?{name}\b", scraped, re.MULTILINE), name
    exported = set(re.findall(r'"(custom\.voice\.[a-z_]+)"', inspect.getsource(metrics_export)))
    for board in ("datadog-dashboard.json", "datadog-monitors.json"):
        used = set(re.findall(r"custom\.voice\.[a-z_]+", (docs / board).read_text()))
        stems = {re.sub(r"\.(avg|median|95percentile|max|count)$", "", u) for u in used}
        assert stems <= exported, stems - exported
        json.loads((docs / board).read_text())
