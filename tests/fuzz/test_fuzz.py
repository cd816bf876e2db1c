"""Fuzzing every endpoint a caller's frontend reaches: the native, Twilio ConversationRelay and
Retell sockets, and the chat-completions body. Frames come from hypothesis (each protocol's
frames with fields missing, mistyped or hostile; any JSON; deep nesting; huge numbers) and
random bytes, as text and as binary. For every example, on a fresh call: the service neither
crashes nor logs an error or a traceback; the call answers a probe afterwards (so every bad
frame got an error frame or was ignored, and the loop goes on), or it was closed cleanly; a
healthy call on the same process is answered normally throughout.

VOICE_AGENT_FUZZ_FRAMES sets the frames per endpoint: 120 in the test command, always the same
ones; `VOICE_AGENT_FUZZ_FRAMES=10000` sends random ones, about 10,000 per endpoint, and prints
the count (docs/security.md has the latest run)."""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from voice_agent.rag.encoder import Encoder

from ..fakes import scaled
from .frames import NATIVE, RETELL, TWILIO, frames_for, json_values, raw
from .server import Failures, ThreadedService

pytestmark = pytest.mark.model

# Frames to send per endpoint: a socket example holds one to four frames (about 2.3 on
# average), a chat example one body.
FRAMES = int(os.environ.get("VOICE_AGENT_FUZZ_FRAMES", "120"))


def fuzz_settings(examples: int) -> settings:
    return settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize="VOICE_AGENT_FUZZ_FRAMES" not in os.environ,  # the suite's never varies
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


FUZZ = fuzz_settings(FRAMES // 2)
FUZZ_BODIES = fuzz_settings(FRAMES)
CLEAN = {1000, 1001, 1008, 1009, 1013}  # ended, going away, refused, too big, try later
WAIT_S = scaled(10)
HEALTHY_EVERY_S = 2.0
ANSWER = "Maple Street Pharmacy opens at 9 AM."  # the fake LLM's
sent: dict[str, int] = {}


class Fuzzed:
    def __init__(
        self, service: ThreadedService, failures: Failures, healthy: ClientConnection
    ) -> None:
        self.service = service
        self.failures = failures
        self.ws_url = service.url.replace("http://", "ws://")
        self.healthy = healthy
        self.healthy.send(json.dumps({"type": "call.start", "call_id": "healthy"}))
        assert json.loads(self.healthy.recv(WAIT_S))["type"] == "call.ready"
        self.examples = 0
        self.asked = 0  # questions the healthy call had answered
        self.next_ask = 0.0

    def check_healthy(self) -> None:
        """Every two seconds (a pace a caller keeps, under the turn rate), the healthy call
        asks and must be answered as always."""
        self.examples += 1
        if time.monotonic() < self.next_ask:
            return
        self.next_ask = time.monotonic() + HEALTHY_EVERY_S
        self.healthy.send(json.dumps({"type": "user.utterance", "text": "Do you deliver?"}))
        while (frame := json.loads(self.healthy.recv(WAIT_S)))["type"] != "agent.done":
            assert frame["type"] != "error", frame
        assert (frame["source"], frame["text"]) == ("llm", ANSWER), frame
        self.asked += 1

    def no_failures(self) -> None:
        assert not self.failures.records, self.failures.described()


@pytest.fixture(scope="module")
def fuzzed(encoder: Encoder) -> Iterator[Fuzzed]:
    failures = Failures()
    root = logging.getLogger()
    root.addHandler(failures)
    service = ThreadedService(
        encoder,
        VOICE_AGENT_DEFAULT_FLOW="qa",
        VOICE_AGENT_RESPONSE_CACHE=False,
        VOICE_AGENT_RETELL_DETAILS_WAIT_S=0,
        VOICE_AGENT_TELEMETRY_TRANSCRIPTS=False,
    )
    service.start()
    try:
        healthy_url = service.url.replace("http://", "ws://") + "/v1/calls"
        with connect(healthy_url, ping_interval=None) as healthy:  # pings use `random`
            fuzzed = Fuzzed(service, failures, healthy)
            yield fuzzed
            print(f"\nfuzz frames sent: {sent}; healthy call answered {fuzzed.asked} times")
    finally:
        service.stop()
        root.removeHandler(failures)


def send_all(ws: ClientConnection, frames: list[str | bytes], endpoint: str) -> bool:
    """Send the frames; False when the service closed the call cleanly on the way."""
    for frame in frames:
        try:
            ws.send(frame)
        except ConnectionClosed as closed:
            assert closed.rcvd is not None and closed.rcvd.code in CLEAN, closed
            return False
        sent[endpoint] = sent.get(endpoint, 0) + 1
    return True


def probe(ws: ClientConnection, frame: dict[str, Any], answered: Callable[[Any], bool]) -> None:
    """The call still reads and answers in order: `frame` gets its answer (other frames
    still on their way are skipped), or the call was closed cleanly by what came before."""
    try:
        ws.send(json.dumps(frame))
        while not answered(json.loads(ws.recv(WAIT_S))):
            pass
    except ConnectionClosed as closed:
        assert closed.rcvd is not None and closed.rcvd.code in CLEAN, closed


def fuzz_socket(
    fuzzed: Fuzzed, path: str, opening: list[str], frames: list[str | bytes], endpoint: str,
    check: dict[str, Any], answered: Callable[[Any], bool],
) -> None:  # fmt: skip
    with connect(fuzzed.ws_url + path, max_size=None, ping_interval=None) as ws:
        for frame in opening:
            ws.send(frame)
        if send_all(ws, frames, endpoint):
            probe(ws, check, answered)
    fuzzed.no_failures()
    fuzzed.check_healthy()


@FUZZ
@given(frames=frames_for(NATIVE, "type"))
def test_fuzzed_native_frames(fuzzed: Fuzzed, frames: list[str | bytes]) -> None:
    fuzz_socket(
        fuzzed, "/v1/calls", [json.dumps({"type": "call.start"})], frames, "native",
        {"type": "fuzz.probe"},
        lambda f: f.get("code") == "unknown_type" and "fuzz.probe" in f.get("message", ""),
    )  # fmt: skip


@FUZZ
@given(frames=frames_for(TWILIO, "type"))
def test_fuzzed_twilio_relay_frames(fuzzed: Fuzzed, frames: list[str | bytes]) -> None:
    setup = json.dumps({"type": "setup", "callSid": "CAfuzz", "from": "+1", "to": "+2"})
    prompt = {"type": "prompt", "voicePrompt": "Do you deliver?", "last": True}
    fuzz_socket(
        fuzzed, "/twilio/relay", [setup], frames, "twilio", prompt,
        lambda f: f.get("type") == "text" and f.get("last") is True,
    )  # fmt: skip


@FUZZ
@given(frames=frames_for(RETELL, "interaction_type"))
def test_fuzzed_retell_frames(fuzzed: Fuzzed, frames: list[str | bytes]) -> None:
    ping = {"interaction_type": "ping_pong", "timestamp": 424242}
    fuzz_socket(
        fuzzed, "/retell/llm/fuzz", [], frames, "retell", ping,
        lambda f: f.get("response_type") == "ping_pong" and f.get("timestamp") == 424242,
    )  # fmt: skip


chat_bodies = st.one_of(
    json_values.map(json.dumps),
    raw,
    st.fixed_dictionaries(
        {"messages": st.lists(st.dictionaries(st.sampled_from(["role", "content"]), json_values))},
        optional={"stream": json_values, "call": json_values, "model": json_values},
    ).map(json.dumps),
)


@FUZZ_BODIES
@given(body=chat_bodies)
def test_fuzzed_chat_bodies(fuzzed: Fuzzed, body: str) -> None:
    response = httpx.post(
        fuzzed.service.url + "/v1/chat/completions",
        content=body.encode("utf-8", "surrogatepass"),
        headers={"content-type": "application/json"},
        timeout=WAIT_S,
    )
    sent["chat"] = sent.get("chat", 0) + 1
    assert response.status_code in (200, 400, 409, 413, 422, 429), response.text
    fuzzed.no_failures()
    fuzzed.check_healthy()
