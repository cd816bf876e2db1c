"""OpenTelemetry traces: a real call's turn becomes one trace whose spans are its stages, timed
as the turn record timed them and nested inside the turn; with an endpoint set, the spans reach
an OTLP/HTTP collector (a loopback one that decodes the protobuf); with none, no tracer exists."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from voice_agent.server.service import Service
from voice_agent.telemetry.event import TurnEvent
from voice_agent.telemetry.tracing import TURN_SPAN, TurnTracer, tracer_with, traces_url

from ..conftest import call
from ..fakes import FakeLLM, scaled

NS_PER_MS = 1_000_000


async def test_an_llm_turn_is_one_trace_with_a_span_per_stage(
    make_service: Callable[..., Service], running: Any
) -> None:
    service = make_service(FakeLLM(first_token_s=scaled(0.02), token_interval_s=0.005))
    spans = InMemorySpanExporter()
    service.telemetry.exporters.append(tracer_with(spans, "voice-agent", "test", batch=False))
    async with running(service) as url, call(url) as client:
        started = await client.start(call_id="traced-call")
        frames = await client.ask("Do you deliver prescriptions?")
    done = frames[-1]
    assert done["source"] == "llm", done

    finished = spans.get_finished_spans()
    (root,) = [s for s in finished if s.name == TURN_SPAN and s.attributes["voice.source"] == "llm"]
    assert root.attributes["voice.call_id"] == "traced-call", started
    assert root.attributes["voice.state"] == done["state"]
    assert "voice.question" not in root.attributes  # no caller words in traces
    children = {
        s.name: s for s in finished if s.parent and s.parent.span_id == root.context.span_id
    }
    for stage in ("flow_step", "quick", "retrieval", "llm_first_token", "llm_total", "streaming"):
        assert stage in children, sorted(children)
    latency = done["latency_ms"]
    assert root.end_time - root.start_time == int(latency["total"] * NS_PER_MS)
    for name, span in children.items():
        assert span.context.trace_id == root.context.trace_id
        assert root.start_time <= span.start_time <= span.end_time <= root.end_time + 1, name
        if name in latency:  # a stage's span lasts what the turn's latency says it took
            assert abs((span.end_time - span.start_time) / NS_PER_MS - latency[name]) < 0.01
    # The order the turn ran in: the flow decides, the tiers try, the model starts, words flow.
    assert children["flow_step"].end_time <= children["quick"].end_time
    assert children["retrieval"].end_time <= children["llm_first_token"].end_time
    assert children["streaming"].start_time == root.start_time + int(
        latency["first_token"] * NS_PER_MS
    )


def test_shadow_answers_are_not_traced_as_turns() -> None:
    spans = InMemorySpanExporter()
    tracer = tracer_with(spans, "voice-agent", "test", batch=False)
    event = TurnEvent(
        call_id="c", turn_id=1, flow="qa", state="answer", mode="shadow", source="cache",
        question=None, answer="", latency_ms={"total": 3.0}, detail={}, shadow_answer=True,
    )  # fmt: skip
    tracer.turn_served(event)
    assert spans.get_finished_spans() == ()


def test_no_endpoint_no_tracer(make_service: Callable[..., Service]) -> None:
    service = make_service()
    assert service.observers.tracer is None
    assert not [x for x in service.telemetry.exporters if isinstance(x, TurnTracer)]


@contextmanager
def collector() -> Iterator[tuple[str, list[ExportTraceServiceRequest]]]:
    """A loopback OTLP/HTTP trace receiver: decodes each POST to /v1/traces."""
    received: list[ExportTraceServiceRequest] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if self.path == "/v1/traces":
                received.append(ExportTraceServiceRequest.FromString(body))
            self.send_response(200 if self.path == "/v1/traces" else 404)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()


async def test_with_an_endpoint_the_spans_reach_an_otlp_collector(
    make_service: Callable[..., Service], running: Any
) -> None:
    with collector() as (endpoint, received):
        service = make_service(
            VOICE_AGENT_OTLP_ENDPOINT=endpoint, VOICE_AGENT_OTEL_SERVICE_NAME="pharmacy-agent"
        )
        assert service.observers.tracer is not None
        async with running(service) as url, call(url) as client:
            await client.start()
            await client.ask("Do you deliver prescriptions?")
        service.observers.tracer.close()  # flushes the batch
        spans = {}
        for request in received:
            for resource_spans in request.resource_spans:
                attributes = {
                    a.key: a.value.string_value for a in resource_spans.resource.attributes
                }
                assert attributes["service.name"] == "pharmacy-agent"
                for scope in resource_spans.scope_spans:
                    spans.update({s.name: s for s in scope.spans})
    assert {TURN_SPAN, "flow_step", "llm_first_token", "streaming"} <= set(spans)
    root = spans[TURN_SPAN]
    assert spans["llm_first_token"].parent_span_id == root.span_id


def test_the_collector_url_gets_the_traces_path_once() -> None:
    assert traces_url("http://otel:4318") == "http://otel:4318/v1/traces"
    assert traces_url("http://otel:4318/") == "http://otel:4318/v1/traces"
    assert traces_url("https://otel.example/v1/traces") == "https://otel.example/v1/traces"
