"""CloudWatch metrics as Embedded Metric Format log lines, the third sink beside DogStatsD and
Prometheus: one JSON line per turn, quality score and latency alert, written to standard
output (where the CloudWatch agent, ECS's awslogs driver or Fluent Bit pick it up) or a file.
CloudWatch turns each line into metrics by itself; nothing on the turn's path talks to AWS.

Each line has the format's required parts: `_aws.Timestamp` (ms since the epoch) and
`_aws.CloudWatchMetrics`, a directive naming the namespace, the dimension sets (each
dimension a top-level string member of the line) and the metrics (each a top-level number).
https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from voice_agent.telemetry.event import TurnEvent
from voice_agent.telemetry.json_lines import JsonLines
from voice_agent.telemetry.latency_slo import LatencyAlert

# The fleet as a whole (no dimension: what the alarms watch), per source and mode, and per state.
DIMENSIONS = [[], ["source", "mode"], ["source", "mode", "state"]]
Metrics = dict[str, tuple[float, str]]  # name: (value, unit)


class CloudWatchEMF:
    def __init__(self, target: Path | str, namespace: str = "VoiceAgent") -> None:
        self.namespace = namespace
        self._lines = JsonLines(target)

    def _emit(self, where: dict[str, str], sets: list[list[str]], metrics: Metrics) -> None:
        directive = {
            "Namespace": self.namespace,
            "Dimensions": sets,
            "Metrics": [{"Name": name, "Unit": unit} for name, (_, unit) in metrics.items()],
        }
        line: dict[str, Any] = {
            "_aws": {"Timestamp": int(time.time() * 1000), "CloudWatchMetrics": [directive]},
            **where,
            **{name: value for name, (value, _) in metrics.items()},
        }
        self._lines.write(line)

    def turn_served(self, event: TurnEvent) -> None:
        metrics: Metrics = {
            "TurnTotalLatency": (event.latency_ms.get("total", 0.0), "Milliseconds"),
            "Turns": (1, "Count"),
        }
        first = event.latency_ms.get("first_token", -1.0)
        if first >= 0:
            metrics["FirstWordLatency"] = (first, "Milliseconds")
        where = {"source": event.source, "mode": event.mode, "state": event.state}
        self._emit(where, DIMENSIONS, metrics)

    def quality_scored(self, event: TurnEvent, score: float, parts: dict[str, float]) -> None:
        where = {"source": event.source, "mode": event.mode, "state": event.state}
        self._emit(where, DIMENSIONS, {"QualityScore": (score, "None")})

    def latency_alerted(self, alert: LatencyAlert) -> None:
        where = {"source": alert.source, "kind": alert.kind}
        self._emit(where, [["source", "kind"]], {"LatencyAlerts": (1, "Count")})

    def close(self) -> None:
        self._lines.close()
