"""Sliding windows of live turn stats: latency percentiles per response source, the tier mix
and the cache hit rate. What `/health` reports and an on-call engineer compares."""

from __future__ import annotations

from collections import deque

import numpy as np

from voice_agent.telemetry import TurnEvent

MEASURES = ("first_token", "total")


class LatencyTracker:
    def __init__(self, window: int = 1000) -> None:
        self._window = window
        self._values: dict[tuple[str, str], deque[float]] = {}
        self._sources: deque[str] = deque(maxlen=window)
        self._cache_hits: deque[bool] = deque(maxlen=window)

    def turn_served(self, event: TurnEvent) -> None:
        if event.question:
            self._sources.append(event.source)
        cache = event.detail.get("cache")
        if isinstance(cache, dict):
            self._cache_hits.append("miss" not in cache)
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
