"""Sliding-window latency percentiles per response source: what `/healthz` reports and what
an on-call engineer compares between sources and modes."""

from __future__ import annotations

from collections import deque

import numpy as np

from voice_agent.telemetry import TurnEvent

MEASURES = ("first_token", "total")


class LatencyTracker:
    def __init__(self, window: int = 1000) -> None:
        self._window = window
        self._values: dict[tuple[str, str], deque[float]] = {}

    def turn_served(self, event: TurnEvent) -> None:
        for measure in MEASURES:
            value = event.latency_ms.get(measure)
            if value is None or value < 0:
                continue
            key = (event.source, measure)
            values = self._values.get(key)
            if values is None:
                values = self._values[key] = deque(maxlen=self._window)
            values.append(value)

    def snapshot(self) -> dict[str, dict[str, dict[str, float]]]:
        """{source: {measure: {count, p50, p95, p99}}} over the last `window` turns each."""
        out: dict[str, dict[str, dict[str, float]]] = {}
        for (source, measure), values in sorted(self._values.items()):
            p50, p95, p99 = np.percentile(np.fromiter(values, float), [50, 95, 99])
            out.setdefault(source, {})[measure] = {
                "count": len(values),
                "p50": round(float(p50), 2),
                "p95": round(float(p95), 2),
                "p99": round(float(p99), 2),
            }
        return out
