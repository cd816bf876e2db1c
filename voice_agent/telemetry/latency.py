"""Sliding windows of live turn stats: latency percentiles per response source, the tier mix
and the cache hit rate. What `/health` reports and an on-call engineer compares."""

from __future__ import annotations

from collections import deque

import numpy as np

from voice_agent.telemetry.event import TurnEvent

MEASURES = ("first_token", "total")


class LatencyTracker:
    def __init__(self, window: int = 1000) -> None:
        self._window = window
        self._values: dict[tuple[str, str], deque[float]] = {}
        # First word by (source, state, mode), for comparing modes and states.
        self._detailed: dict[tuple[str, str, str], deque[float]] = {}
        self._sources: deque[str] = deque(maxlen=window)
        self._cache_hits: deque[bool] = deque(maxlen=window)

    def turn_served(self, event: TurnEvent) -> None:
        if event.question:
            self._sources.append(event.source)
        result = event.cache
        if result is not None:
            self._cache_hits.append(result == "hit")
        first = event.latency_ms.get("first_token")
        if first is not None and first >= 0:
            key3 = (event.source, event.state, event.mode)
            window = self._detailed.get(key3)
            if window is None:
                window = self._detailed[key3] = deque(maxlen=self._window)
            window.append(first)
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
            out.setdefault(source, {})[measure] = _percentiles(values)
        return out

    def by_state_and_mode(self) -> list[dict[str, object]]:
        """First word percentiles for each (source, state, mode) seen."""
        return [
            {"source": source, "state": state, "mode": mode, "first_token": _percentiles(v)}
            for (source, state, mode), v in sorted(self._detailed.items())
        ]

    def tier_mix(self) -> dict[str, float]:
        """Share of the last answered turns by source."""
        total = len(self._sources)
        counts: dict[str, int] = {}
        for source in self._sources:
            counts[source] = counts.get(source, 0) + 1
        return {s: round(n / total, 3) for s, n in sorted(counts.items())} if total else {}

    def cache_hit_rate(self) -> float | None:
        hits = self._cache_hits
        return round(sum(hits) / len(hits), 3) if hits else None


def _percentiles(values: deque[float]) -> dict[str, float]:
    p50, p95, p99 = np.percentile(np.fromiter(values, float), [50, 95, 99])
    return {
        "count": len(values),
        "p50": round(float(p50), 2),
        "p95": round(float(p95), 2),
        "p99": round(float(p99), 2),
    }
