"""OpenTelemetry traces: one trace per served turn, a span per timed stage (the flow's step,
the quick tier, the cache, the utterance's embedding, retrieval, the LLM's first token and its
whole answer, and the streaming of the answer after its first word), exported with OTLP.

The spans are drawn after the turn, from the stage times its `TurnRecord` keeps anyway, by an
observer like every other: the turn's own path does no tracing work. With no endpoint set the
observer is not built and this module is not even imported. Spans carry the turn's ids, state,
tier and timings, never the caller's words or the answer (those stay in the redacted telemetry
file, where `telemetry_transcripts` governs them).
"""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

from voice_agent.telemetry.event import TurnEvent

TURN_SPAN = "voice.turn"
STREAMING_SPAN = "streaming"  # from the first word sent to the end of the answer
EXPORT_TIMEOUT_S = 5.0  # one export's bound, on the exporter's own thread


def traces_url(endpoint: str) -> str:
    """OTLP over HTTP posts traces to `<collector>/v1/traces`; a full URL is kept as given."""
    endpoint = endpoint.rstrip("/")
    return endpoint if endpoint.endswith("/v1/traces") else endpoint + "/v1/traces"


def _ns(ms: float) -> int:
    return int(ms * 1_000_000)


class TurnTracer:
    """Turns finished turns into spans; the provider's processor exports them off the loop."""

    def __init__(self, provider: TracerProvider) -> None:
        self._provider = provider
        self._tracer = provider.get_tracer("voice_agent")

    def turn_served(self, event: TurnEvent) -> None:
        if event.shadow_answer:  # judged, never heard: not a turn of the call
            return
        total_ms = event.latency_ms.get("total", 0.0)
        ended_ns = int(event.at * 1_000_000_000)
        started_ns = ended_ns - _ns(total_ms)
        root = self._tracer.start_span(
            TURN_SPAN,
            kind=trace.SpanKind.SERVER,
            start_time=started_ns,
            attributes=_attributes(event),
        )
        inside = trace.set_span_in_context(root)
        for name, (began_ms, until_ms) in _stages(event, total_ms):
            began_ns, until_ns = started_ns + _ns(began_ms), started_ns + _ns(until_ms)
            self._tracer.start_span(name, context=inside, start_time=began_ns).end(until_ns)
        root.end(end_time=ended_ns)

    def close(self) -> None:
        """Send what is queued (bounded by the export timeout) and stop the exporter."""
        self._provider.shutdown()


def _stages(event: TurnEvent, total_ms: float) -> list[tuple[str, tuple[float, float]]]:
    stages = sorted(event.spans_ms.items(), key=lambda item: item[1][0])
    first_ms = event.latency_ms.get("first_token", -1.0)
    if first_ms >= 0:
        stages.append((STREAMING_SPAN, (first_ms, max(first_ms, total_ms))))
    return stages


def _attributes(event: TurnEvent) -> dict[str, str | int | float]:
    attributes: dict[str, str | int | float] = {
        "voice.call_id": event.call_id,
        "voice.turn_id": event.turn_id,
        "voice.flow": event.flow,
        "voice.state": event.state,
        "voice.mode": event.mode,
        "voice.source": event.source,
        "voice.total_ms": event.latency_ms.get("total", 0.0),
    }
    first_ms = event.latency_ms.get("first_token", -1.0)
    if first_ms >= 0:
        attributes["voice.first_word_ms"] = first_ms
    if event.cache is not None:
        attributes["voice.cache"] = event.cache
    if event.fallback_reason is not None:
        attributes["voice.fallback_reason"] = event.fallback_reason
    return attributes


def otlp_tracer(endpoint: str, service_name: str, instance: str) -> TurnTracer:
    """A tracer that batches spans and posts them to the collector at `endpoint` (OTLP over
    HTTP, protobuf); a collector that is down costs a logged export error, never a turn."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    exporter = OTLPSpanExporter(endpoint=traces_url(endpoint), timeout=EXPORT_TIMEOUT_S)
    return tracer_with(exporter, service_name, instance, batch=True)


def tracer_with(
    exporter: SpanExporter, service_name: str, instance: str, batch: bool = True
) -> TurnTracer:
    """A tracer over any exporter (tests use the SDK's in-memory one, unbatched)."""
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    resource = Resource.create({"service.name": service_name, "service.instance.id": instance})
    provider = TracerProvider(resource=resource)
    processor = BatchSpanProcessor(exporter) if batch else SimpleSpanProcessor(exporter)
    provider.add_span_processor(processor)
    return TurnTracer(provider)
