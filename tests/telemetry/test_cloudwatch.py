"""CloudWatch Embedded Metric Format: every line the sink writes has the format's required
fields (a millisecond timestamp; a directive whose dimensions and metrics are top-level members
of the line, strings and numbers), a real call writes them, and the two alarms in
docs/dashboards name metrics and dimensions the sink emits, with the rollout guide's numbers."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from voice_agent.server.service import Service
from voice_agent.telemetry.cloudwatch import CloudWatchEMF
from voice_agent.telemetry.event import TurnEvent
from voice_agent.telemetry.latency_slo import LatencyAlert

from ..conftest import call
from ..fakes import FakeLLM, scaled

DASHBOARDS = Path(__file__).resolve().parents[2] / "docs" / "dashboards"


def check_emf(line: dict[str, Any]) -> tuple[str, set[str], list[list[str]]]:
    """Assert the EMF specification's required parts; the namespace, metric names and sets."""
    aws = line["_aws"]
    assert isinstance(aws["Timestamp"], int) and aws["Timestamp"] > 1_600_000_000_000
    (directive,) = aws["CloudWatchMetrics"]
    assert isinstance(directive["Namespace"], str) and directive["Namespace"]
    for dimension_set in directive["Dimensions"]:
        assert len(dimension_set) <= 30
        for key in dimension_set:
            assert isinstance(line[key], str) and line[key], key
    names = set()
    for metric in directive["Metrics"]:
        assert isinstance(line[metric["Name"]], int | float), metric
        assert metric.get("Unit", "None") in {"Milliseconds", "Count", "None"}
        names.add(metric["Name"])
    return directive["Namespace"], names, directive["Dimensions"]


def test_every_line_is_embedded_metric_format(tmp_path: Path) -> None:
    out = tmp_path / "emf.jsonl"
    sink = CloudWatchEMF(out, namespace="VoiceAgent")
    event = TurnEvent(
        call_id="c", turn_id=1, flow="qa", state="answer", mode="enabled", source="llm",
        question="q", answer="a", latency_ms={"first_token": 412.5, "total": 900.0}, detail={},
    )  # fmt: skip
    sink.turn_served(event)
    sink.quality_scored(event, 81.0, {})
    sink.latency_alerted(LatencyAlert("llm", "alert", 2500, 5, 2700))
    sink.close()
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    checked = [check_emf(line) for line in lines]
    assert checked[0][1] == {"FirstWordLatency", "TurnTotalLatency", "Turns"}
    assert lines[0]["FirstWordLatency"] == 412.5 and [] in checked[0][2]
    assert checked[1][1] == {"QualityScore"} and checked[2][1] == {"LatencyAlerts"}


@pytest.mark.model
async def test_a_call_writes_emf_lines_the_alarms_can_use(
    make_service: Callable[..., Service], running: Any, tmp_path: Path
) -> None:
    out = tmp_path / "emf.jsonl"
    service = make_service(FakeLLM(), VOICE_AGENT_CLOUDWATCH_EMF=str(out))
    async with running(service) as url, call(url) as client:
        await client.start()
        await client.ask("Do you deliver prescriptions?")
        assert service.quality is not None and await service.quality.drain(scaled(5))
    emitted = {}
    for line in (json.loads(x) for x in out.read_text().splitlines()):
        namespace, names, sets = check_emf(line)
        for name in names:
            emitted.setdefault((namespace, name), []).extend(tuple(s) for s in sets)
    alarms = json.loads((DASHBOARDS / "cloudwatch-alarms.json").read_text())
    by_name = {alarm["MetricName"]: alarm for alarm in alarms}
    for alarm in alarms:
        dimensions = tuple(d["Name"] for d in alarm["Dimensions"])
        assert dimensions in emitted[(alarm["Namespace"], alarm["MetricName"])], alarm
    latency, quality = by_name["FirstWordLatency"], by_name["QualityScore"]
    assert (latency["Threshold"], latency["Period"], latency["EvaluationPeriods"]) == (2500, 60, 2)
    assert latency["ComparisonOperator"] == "GreaterThanThreshold"
    assert (quality["Threshold"], quality["Period"], quality["EvaluationPeriods"]) == (70, 300, 1)
    assert quality["ComparisonOperator"] == "LessThanThreshold"
