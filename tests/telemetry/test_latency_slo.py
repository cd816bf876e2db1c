"""The latency SLO: an alert once a source's first word has been over the limit for N turns in
a row (once per streak, with its recovery), and, with the stub LLM slowed past the rollback
limit in enabled mode, the automatic rollback to shadow, in the metrics and the audit log."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from voice_agent.server.service import Service
from voice_agent.telemetry.event import TurnEvent
from voice_agent.telemetry.latency_slo import LatencyAlert, LatencyLimits, LatencySLO

from ..conftest import call
from ..fakes import FakeLLM


def turn(source: str, first_ms: float, mode: str = "enabled") -> TurnEvent:
    return TurnEvent(
        call_id="c", turn_id=1, flow="qa", state="answer", mode=mode, source=source,
        question="q", answer="a", latency_ms={"first_token": first_ms, "total": first_ms},
        detail={},
    )  # fmt: skip


def watched(limits: LatencyLimits) -> tuple[LatencySLO, list[LatencyAlert]]:
    slo = LatencySLO(limits)
    heard: list[LatencyAlert] = []
    slo.listeners.append(heard.append)
    return slo, heard


def test_a_source_slow_for_n_turns_in_a_row_alerts_once_and_recovers() -> None:
    slo, heard = watched(LatencyLimits(alert_ms=2500, alert_turns=5, rollback_ms=1e9))
    for _ in range(4):
        slo.turn_served(turn("llm", 2600))
    slo.turn_served(turn("quick", 40))  # another source's fast turn breaks no streak
    assert heard == []
    slo.turn_served(turn("llm", 2700))
    for _ in range(5):
        slo.turn_served(turn("llm", 2800))  # the same streak: no second alert
    assert heard == [LatencyAlert("llm", "alert", 2500, 5, 2700)]
    assert slo.alerting == {"llm"}
    slo.turn_served(turn("llm", 900))
    assert slo.alerting == set()
    for _ in range(4):
        slo.turn_served(turn("llm", 2600))
    slo.turn_served(turn("llm", 100))  # a streak broken short of five: no alert
    assert len(heard) == 1


def test_only_enabled_mode_turns_count_towards_the_rollback() -> None:
    slo, heard = watched(LatencyLimits(alert_ms=1e9, rollback_ms=3000, rollback_turns=10))
    for _ in range(9):
        slo.turn_served(turn("llm", 3100))
    for _ in range(5):
        slo.turn_served(turn("llm", 3100, mode="shadow"))  # the baseline path: not counted
    assert heard == []
    slo.turn_served(turn("cache", 3200))
    assert heard == [LatencyAlert("cache", "rollback", 3000, 10, 3200)]


@pytest.mark.model
async def test_a_slow_llm_raises_the_alert_then_rolls_the_fleet_back_to_shadow(
    make_service: Callable[..., Service],
    running: Any,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    audit = tmp_path / "audit.jsonl"
    service = make_service(
        FakeLLM(first_token_s=0.3),  # the first word at about 300 ms
        VOICE_AGENT_AUDIT_LOG=str(audit),
        VOICE_AGENT_FIRST_TOKEN_BUDGET_S=2.0,  # no filler: the answer is the first word
        LATENCY_ALERT_MS=150,
        LATENCY_ALERT_TURNS=3,
        LATENCY_ROLLBACK_MS=200,
        LATENCY_ROLLBACK_TURNS=4,
    )
    caplog.set_level(logging.WARNING)
    questions = ["Do you deliver?", "Where are you?", "Do you take insurance?", "Any parking?"]
    async with running(service) as url, httpx.AsyncClient(base_url=url) as http:
        async with call(url) as client:
            await client.start()
            for question in questions:
                assert (await client.ask(question))[-1]["source"] == "llm"
        flags = (await http.get("/v1/admin/flags")).json()
        health = (await http.get("/health")).json()
        metrics = (await http.get("/metrics")).text
    alerts = [r.getMessage() for r in caplog.records if "[LATENCY_ALERT]" in r.getMessage()]
    assert alerts[0].startswith("[LATENCY_ALERT] kind=alert source=llm")
    assert any(a.startswith("[LATENCY_ALERT] kind=rollback") for a in alerts)
    assert flags["mode"] == "shadow" and health["latency_alerting"] == ["llm"]
    assert 'voice_latency_alerts_total{kind="alert",source="llm"} 1.0' in metrics
    assert 'voice_latency_alerts_total{kind="rollback",source="llm"} 1.0' in metrics
    (line,) = [json.loads(x) for x in audit.read_text().splitlines()]
    assert line["who"].startswith("auto-rollback: first word over 200 ms") and line["new"] == {
        "mode": "shadow"
    }
