"""Metric exporters behind the telemetry verbs: Prometheus (`/metrics`) and DogStatsD.

Both observe finished turns (`turn_served`) and quality scores (`quality_scored`); neither
knows about calls or tiers beyond the tags. Names and tags are listed in LATENCY_DASHBOARD.md.
"""

from __future__ import annotations

import logging

from datadog.dogstatsd.base import DogStatsd
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from voice_agent.telemetry.event import TurnEvent
from voice_agent.telemetry.latency_slo import LatencyAlert

log = logging.getLogger(__name__)

LATENCY_BUCKETS_MS = (1, 2.5, 5, 10, 25, 50, 100, 250, 500, 750, 1000, 1500, 2500, 5000)
SCORE_BUCKETS = (10, 20, 30, 40, 50, 60, 70, 75, 80, 85, 90, 95, 100)


def _cache_result(event: TurnEvent) -> str | None:
    """hit or miss for turns the cache saw; in shadow mode, a would-be hit counts as a hit."""
    result = event.cache
    if result is None and event.would_be is not None and event.would_be.source == "cache":
        return "hit"
    return result


class PrometheusMetrics:
    """The service's metrics. With `multiproc_dir` (several processes on one port), each
    process writes its values to files there and a scrape of any of them sums them all: one
    target per machine or pod, as Prometheus expects, whichever process answers."""

    def __init__(self, multiproc_dir: str = "") -> None:
        self.registry = CollectorRegistry()
        self._multiproc_dir = multiproc_dir
        labels = ("source", "state", "mode")
        self.first_token = Histogram(
            "voice_first_token_ms",
            "Time from the caller's utterance to the first word sent, in ms",
            labels,
            buckets=LATENCY_BUCKETS_MS,
            registry=self.registry,
        )
        self.total = Histogram(
            "voice_turn_total_ms",
            "Time from the caller's utterance to the end of the answer, in ms",
            labels,
            buckets=LATENCY_BUCKETS_MS,
            registry=self.registry,
        )
        self.turns = Counter("voice_turns", "Turns served", labels, registry=self.registry)
        self.cache = Counter(
            "voice_cache_lookups", "Cache lookups by result", ("result", "state"),
            registry=self.registry,
        )  # fmt: skip
        self.latency_alerts = Counter(
            "voice_latency_alerts", "Latency SLO alerts by source and kind (alert, rollback)",
            ("source", "kind"), registry=self.registry,
        )  # fmt: skip
        self.quality = Histogram(
            "voice_quality_score",
            "Quality score of served answers (0-100)",
            ("source", "state", "mode"),
            buckets=SCORE_BUCKETS,
            registry=self.registry,
        )

        # The autoscaler's measure of load: open calls (sockets and chat turns in flight).
        self.active_calls = Gauge(
            "voice_active_calls", "Calls open now (on sockets, and chat turns being answered)",
            registry=self.registry, multiprocess_mode="livesum",
        )  # fmt: skip

    def turn_served(self, event: TurnEvent) -> None:
        labels = (event.source, event.state, event.mode)
        first = event.latency_ms.get("first_token", -1.0)
        if first >= 0:
            self.first_token.labels(*labels).observe(first)
        self.total.labels(*labels).observe(event.latency_ms.get("total", 0.0))
        self.turns.labels(*labels).inc()
        result = _cache_result(event)
        if result is not None:
            self.cache.labels(result, event.state).inc()

    def quality_scored(self, event: TurnEvent, score: float, parts: dict[str, float]) -> None:
        self.quality.labels(event.source, event.state, event.mode).observe(score)

    def latency_alerted(self, alert: LatencyAlert) -> None:
        self.latency_alerts.labels(alert.source, alert.kind).inc()

    def render(self) -> bytes:
        if not self._multiproc_dir:
            return generate_latest(self.registry)
        every_process = CollectorRegistry()
        MultiProcessCollector(every_process, path=self._multiproc_dir)  # type: ignore[no-untyped-call]  # prometheus_client leaves it untyped
        return generate_latest(every_process)


class DogStatsdMetrics:
    """DogStatsD over UDP to the agent at DD_AGENT_HOST:DD_DOGSTATSD_PORT; sending never blocks
    a turn (UDP, no buffering, no background thread)."""

    def __init__(self, host: str, port: int) -> None:
        self.client = DogStatsd(host=host, port=port, disable_telemetry=True)

    def _tags(self, event: TurnEvent) -> list[str]:
        return [f"source:{event.source}", f"state:{event.state}", f"mode:{event.mode}"]

    def turn_served(self, event: TurnEvent) -> None:
        tags = self._tags(event)
        first = event.latency_ms.get("first_token", -1.0)
        if first >= 0:
            stage = [*tags, "stage:first_token"]
            self.client.histogram("custom.voice.latency_ms", first, tags=stage)
        total = event.latency_ms.get("total", 0.0)
        self.client.histogram("custom.voice.latency_ms", total, tags=[*tags, "stage:total"])
        self.client.increment("custom.voice.turns", tags=tags)
        result = _cache_result(event)
        if result is not None:
            self.client.increment("custom.voice.cache", tags=[*tags, f"result:{result}"])

    def quality_scored(self, event: TurnEvent, score: float, parts: dict[str, float]) -> None:
        self.client.histogram("custom.voice.quality_score", score, tags=self._tags(event))

    def latency_alerted(self, alert: LatencyAlert) -> None:
        tags = [f"source:{alert.source}", f"kind:{alert.kind}"]
        self.client.increment("custom.voice.latency_alert", tags=tags)

    def close(self) -> None:
        self.client.close_socket()
