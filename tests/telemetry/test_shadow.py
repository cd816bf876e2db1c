"""Shadow mode: the LLM path serves every turn while the fast tiers decide beside it; each turn
they would have answered gets a [SHADOW] record (served and would-be answers, their latency and
similarity), and the cache still learns from the served answers."""

from __future__ import annotations

import contextlib
import json
import logging
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from voice_agent.cli import main
from voice_agent.server.service import Service

from ..conftest import call
from ..fakes import FakeLLM, scaled

pytestmark = pytest.mark.model


async def test_shadow_serves_the_llm_and_records_what_the_fast_tiers_would_say(
    make_service: Callable[..., Service], running: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="voice_agent.telemetry")
    llm = FakeLLM(tokens=("We ", "open ", "at ", "9 ", "AM ", "on ", "Saturdays."))
    service = make_service(llm, LATENCY_OPTIMIZATION_MODE="shadow", VOICE_AGENT_RESPONSE_CACHE=True)
    async with running(service) as url, call(url) as client:
        ready = await client.start()
        served = [
            (await client.ask(text))[-1]
            for text in ("hello there", "What time do you open on Saturday?", "Do you deliver?")
        ]
        assert await service.shadow.drain(scaled(5))
        assert service.cache is not None and await service.cache.drain(scaled(5))
    assert ready["mode"] == "shadow"
    assert [d["source"] for d in served] == ["llm", "llm", "llm"] and len(llm.calls) == 3
    records = [
        json.loads(r.getMessage().split(" ", 1)[1])
        for r in caplog.records
        if r.getMessage().startswith("[SHADOW]")
    ]
    would_be = {r["question"]: r["would_be"] for r in records}
    assert would_be["hello there"]["source"] == "quick"
    saturday = next(r for r in records if r["question"].startswith("What time"))
    assert saturday["would_be"]["source"] == "cache"  # the FAQ's warm answer
    assert saturday["would_be"]["answer"].startswith("Maple Street Pharmacy opens at 9 AM")
    assert saturday["served"]["source"] == "llm" and 0.5 < saturday["similarity"] <= 1
    assert saturday["would_be"]["latency_ms"] > 0 and saturday["served"]["first_token_ms"] > 0
    assert served[2]["detail"]["cache_stored"] is True  # the cache learns in shadow


async def test_a_shadow_run_is_seen_in_logs_metrics_and_dogstatsd(
    make_service: Callable[..., Service], running: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="voice_agent.telemetry")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as agent:
        agent.bind(("127.0.0.1", 0))
        agent.settimeout(scaled(2))
        service = make_service(
            FakeLLM(),
            LATENCY_OPTIMIZATION_MODE="shadow",
            VOICE_AGENT_RESPONSE_CACHE=True,
            DD_AGENT_HOST="127.0.0.1",
            DD_DOGSTATSD_PORT=agent.getsockname()[1],
        )
        async with running(service) as url:
            async with call(url) as client:
                await client.start()
                for text in ("hello there", "What time do you open on Saturday?"):
                    await client.ask(text)
                assert service.quality is not None and await service.quality.drain(scaled(5))
                assert await service.shadow.drain(scaled(5))
            async with httpx.AsyncClient(base_url=url) as http:
                metrics = (await http.get("/metrics")).text
        packets = []
        with contextlib.suppress(TimeoutError):
            while True:
                packets.extend(agent.recv(65536).decode().splitlines())
    messages = [r.getMessage() for r in caplog.records]
    assert sum(m.startswith("[LATENCY]") and "mode=shadow" in m for m in messages) == 2
    assert sum(m.startswith("[QUALITY]") and "source=llm" in m for m in messages) == 2
    assert sum(m.startswith("[QUALITY]") and "would_be=true" in m for m in messages) == 2
    assert sum(m.startswith("[SHADOW]") for m in messages) == 2
    assert (
        'voice_first_token_ms_bucket{le="500.0",mode="shadow",source="llm",state="answer"} 2.0'
        in metrics
    )
    assert 'voice_quality_score_count{mode="shadow",source="llm",state="answer"} 2.0' in metrics
    latency = [p for p in packets if p.startswith("custom.voice.latency_ms:")]
    assert len(latency) == 4 and all(
        "|h|#source:llm,state:answer,mode:shadow" in p for p in latency
    )
    # Two served answers and two would-be answers (quick, cache) were scored.
    assert sum(p.startswith("custom.voice.quality_score:") for p in packets) == 4
    assert any(p.startswith("custom.voice.cache:1|c|") and "result:hit" in p for p in packets)


async def test_the_report_compares_a_scripted_shadow_run_with_charts(
    make_service: Callable[..., Service], running: Any, tmp_path: Path
) -> None:
    telemetry = tmp_path / "telemetry.jsonl"
    service = make_service(
        FakeLLM(),
        LATENCY_OPTIMIZATION_MODE="shadow",
        VOICE_AGENT_RESPONSE_CACHE=True,
        VOICE_AGENT_TELEMETRY_FILE=str(telemetry),
    )
    async with running(service) as url:
        for script in (
            ["hello there", "What time do you open on Saturday?", "thanks"],
            ["Is there parking?", "Do you deliver?", "Do you deliver?"],
        ):
            async with call(url) as client:
                await client.start()
                for text in script:
                    await client.ask(text)
                    assert service.quality is not None
                    assert await service.quality.drain(scaled(5))
                    assert await service.shadow.drain(scaled(5))
                    assert service.cache is not None and await service.cache.drain(scaled(5))
    kinds = [json.loads(line)["type"] for line in telemetry.read_text().splitlines()]
    assert kinds.count("turn") == 6 and "shadow" in kinds
    assert kinds.count("quality") == 6 + kinds.count("shadow")  # served + would-be answers
    out = tmp_path / "report"
    assert main(["report", str(telemetry), "--out", str(out)]) == 0
    report = (out / "report.md").read_text()
    for heading in ("## Latency", "## Quality per response type", "## Fast tiers and the LLM",
                    "## Worst turns by quality"):  # fmt: skip
        assert heading in report
    assert "| served by llm | 6 |" in report and "| cache (would-be) |" in report
    assert "LLM calls saved: " in report and "Cache hit rate: " in report
    for chart in ("latency.png", "quality.png"):
        assert (out / chart).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
