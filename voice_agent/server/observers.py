"""Telemetry's observers of every turn, built once and subscribed to each other: the trackers
(latency, quality, shadow, the latency SLO), the metric exporters, the log lines, the live
stream and the telemetry file, and the automatic rollbacks that listen to the alerts."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING

from voice_agent.flags import FlagStore
from voice_agent.fleet.flags import FleetFlags
from voice_agent.rag.encoder import Encoder
from voice_agent.server.rollback import AutoRollback, LatencyRollback
from voice_agent.settings import Settings
from voice_agent.telemetry.cloudwatch import CloudWatchEMF
from voice_agent.telemetry.event import Telemetry
from voice_agent.telemetry.file import TelemetryFile
from voice_agent.telemetry.latency import LatencyTracker
from voice_agent.telemetry.latency_slo import LatencyLimits, LatencySLO
from voice_agent.telemetry.live_board import LiveBoard
from voice_agent.telemetry.log import LogLines
from voice_agent.telemetry.metrics import DogStatsdMetrics, PrometheusMetrics
from voice_agent.telemetry.quality import QualityTracker
from voice_agent.telemetry.shadow import ShadowRecorder
from voice_agent.telemetry.stream import TelemetryStream

if TYPE_CHECKING:  # imported only when an OTLP endpoint is set: no cost otherwise
    from voice_agent.telemetry.tracing import TurnTracer


@dataclass(frozen=True, slots=True)
class Observers:
    """The turn's observers and exporters, subscribed to each other."""

    quality: QualityTracker
    shadow: ShadowRecorder
    latency: LatencyTracker
    prometheus: PrometheusMetrics
    statsd: DogStatsdMetrics | None
    telemetry_file: TelemetryFile | None
    stream: TelemetryStream
    telemetry: Telemetry
    slo: LatencySLO
    cloudwatch: CloudWatchEMF | None
    board: LiveBoard
    tracer: TurnTracer | None = None

    async def aclose(self) -> None:
        """Finish the background scoring, then close every sink."""
        await self.quality.drain(1.0)
        await self.shadow.drain(1.0)
        for sink in (self.statsd, self.telemetry_file, self.cloudwatch, self.tracer):
            if sink is not None:
                sink.close()


def build_observers(
    settings: Settings, encoder: Encoder, flags: FlagStore, fleet: FleetFlags | None = None
) -> Observers:
    """Telemetry's observers of every turn, the quality tracker's listeners (the exporters and,
    when on, the automatic rollback) and the shadow comparisons' file."""
    quality = QualityTracker(
        encoder.encode_many,
        settings.quality_baseline_score,
        settings.quality_alert_threshold,
        window=settings.quality_window_turns,
        min_turns=min(10, settings.quality_window_turns),
    )
    slo = LatencySLO(
        LatencyLimits(
            settings.latency_alert_ms,
            settings.latency_alert_turns,
            settings.latency_rollback_ms,
            settings.latency_rollback_turns,
        )
    )
    if settings.auto_rollback:
        quality.listeners.append(AutoRollback(flags, quality, fleet))
        slo.listeners.append(LatencyRollback(flags, fleet))
    shadow = ShadowRecorder(encoder.encode_many, settings.telemetry_transcripts)
    latency = LatencyTracker()
    prometheus = PrometheusMetrics(settings.prometheus_multiproc_dir)
    statsd = (
        DogStatsdMetrics(settings.dd_agent_host, settings.dd_dogstatsd_port)
        if settings.dd_agent_host
        else None
    )
    exporters: list[PrometheusMetrics | DogStatsdMetrics | CloudWatchEMF] = [prometheus]
    if statsd is not None:
        exporters.append(statsd)
    cloudwatch = None
    if settings.cloudwatch_emf:
        cloudwatch = CloudWatchEMF(settings.cloudwatch_emf, settings.cloudwatch_namespace)
        exporters.append(cloudwatch)
    for exporter in exporters:
        quality.score_listeners.append(exporter.quality_scored)
        slo.listeners.append(exporter.latency_alerted)
    stream = TelemetryStream()
    board = LiveBoard(quality.snapshot, keep_calls=settings.dashboard_calls)
    quality.score_listeners.append(board.quality_scored)
    shadow.listeners.append(board.shadow_compared)
    quality.listeners.append(
        lambda a: board.alerted(
            "quality", a.source, f"{a.source} quality {a.status}: mean {a.mean}"
        )
    )
    slo.listeners.append(
        lambda a: board.alerted(
            "latency", a.source, f"{a.source} first word over {a.limit_ms:.0f} ms ({a.kind})"
        )
    )
    # The trackers see each turn as it was; what writes it down sees it redacted.
    telemetry = Telemetry(
        [latency, slo, quality, shadow, *exporters],
        [LogLines(), stream, board],
        transcripts=settings.telemetry_transcripts,
    )
    tracer = None
    if settings.otlp_endpoint:
        from voice_agent.telemetry.tracing import otlp_tracer

        instance = f"{socket.gethostname()}-{os.getpid()}"
        tracer = otlp_tracer(settings.otlp_endpoint, settings.otel_service_name, instance)
        telemetry.exporters.append(tracer)
    telemetry_file = None
    if settings.telemetry_file:
        telemetry_file = TelemetryFile(settings.telemetry_file, window_of=quality.window_of)
        telemetry.exporters.append(telemetry_file)
        quality.score_listeners.append(telemetry_file.quality_scored)
        shadow.listeners.append(telemetry_file.shadow_compared)
    return Observers(
        quality, shadow, latency, prometheus, statsd, telemetry_file, stream, telemetry, slo,
        cloudwatch, board, tracer,
    )  # fmt: skip
