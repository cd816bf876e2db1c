"""Barge-in: how soon generation stops after the caller interrupts, for the native protocol,
Twilio ConversationRelay, Retell and the OpenAI-compatible endpoint, with the bundled
SmolLM2-135M.

Each trial asks a question, waits for the first words of the answer, sends the frontend's
interrupt (Retell: a newer response_required; OpenAI: a newer request for the same call) and
measures the time until the service closed the model's stream (in the service's own process)
and the time until the model process stopped decoding (its health endpoint says when, on the
machine's monotonic clock, which every process shares), and
counts the text the client got after the interrupt (Retell: frames of the old response id;
OpenAI: content chunks of the old stream). The baseline printed beside it is the model's own
time between two tokens in the same run: a stop cannot be seen sooner than the token in flight
finishes.

    .venv/bin/python bench/barge_in.py --trials 20
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import aclosing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# bench/quick_responses.py shares its name with the package: keep this folder off the path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import httpx
import websockets

sys.path.insert(0, str(Path(__file__).resolve().parent))
from turn_latency import Server, percentile, row

from voice_agent.llm.local import LocalModel
from voice_agent.server.app import create_app
from voice_agent.server.build import build_service
from voice_agent.settings import load_settings
from voice_agent.tiers.knowledge import KnowledgeTier
from voice_agent.types import Message

QUESTIONS = [
    "Tell me everything about your flu shots and vaccines.",
    "Explain how refills, auto-refill and delivery work.",
    "What insurance plans do you take and what do they cost?",
    "Describe your hours, location and parking in detail.",
]


class ClosingClock:
    """Passes through to the model and notes when each stream is closed."""

    def __init__(self, inner: LocalModel) -> None:
        self.inner = inner
        self.name = inner.name
        self.closed_at: list[float] = []
        self.gaps_ms: list[float] = []  # filled by a direct generation (the baseline)

    async def stream(self, messages: Sequence[Message], max_tokens: int) -> AsyncIterator[str]:
        try:
            async with aclosing(self.inner.stream(messages, max_tokens)) as tokens:
                async for token in tokens:
                    yield token
        finally:
            self.closed_at.append(time.perf_counter())


POLL_S = 0.05
POLLS = 80


class ModelWatch:
    """When the model process last stopped decoding, from its health endpoint. The model
    process notes the moment itself, so asking seldom loses no precision; what must not happen
    inside the measured window is work that takes a core from the model (building an HTTP
    client loads the CA bundle: about 40 ms of CPU, which once doubled the figures here)."""

    def __init__(self, base_url: str) -> None:
        self.health_url = base_url.removesuffix("/v1") + "/health"
        self.noticed_ms: list[float] = []  # interrupt -> the model process saw the client go
        self._http = httpx.Client(timeout=5)

    def health(self) -> dict[str, Any]:
        return dict(self._http.get(self.health_url).json())

    async def stopped_after(self, sent: float) -> float:
        """Milliseconds from `sent` (time.perf_counter) until the model process stopped."""
        offset = time.monotonic() - time.perf_counter()
        for _ in range(POLLS):
            await asyncio.sleep(POLL_S)
            health = await asyncio.to_thread(self.health)
            stopped = health["last_stopped_monotonic"] - offset
            if not health["busy"] and stopped >= sent:
                noticed = health["last_released_monotonic"] - offset
                self.noticed_ms.append((noticed - sent) * 1000)
                return (stopped - sent) * 1000
        raise RuntimeError(f"the model process did not stop within {POLLS * POLL_S:.0f} s")


async def native_trial(url: str, question: str, llm: ModelWatch) -> tuple[float, float, int]:
    async with websockets.connect(url + "/v1/calls") as ws:
        await ws.send(json.dumps({"type": "call.start"}))
        await ws.recv()
        await ws.send(json.dumps({"type": "user.utterance", "text": question}))
        while json.loads(await ws.recv())["type"] != "agent.delta":
            pass
        sent = time.perf_counter()
        await ws.send(json.dumps({"type": "user.interrupt", "heard": "Sure"}))
        thread_ms = await llm.stopped_after(sent)
        return sent, thread_ms, await frames_after(ws, "agent.delta")


async def twilio_trial(url: str, question: str, llm: ModelWatch) -> tuple[float, float, int]:
    async with websockets.connect(url + "/twilio/relay") as ws:
        await ws.send(json.dumps({"type": "setup", "callSid": f"CA{time.time_ns()}"}))
        await ws.send(json.dumps({"type": "prompt", "voicePrompt": question, "last": True}))
        while json.loads(await ws.recv())["type"] != "text":
            pass
        sent = time.perf_counter()
        await ws.send(
            json.dumps({"type": "interrupt", "utteranceUntilInterrupt": "Sure",
                        "durationUntilInterruptMs": 300})
        )  # fmt: skip
        thread_ms = await llm.stopped_after(sent)
        return sent, thread_ms, await frames_after(ws, "text")


async def retell_trial(url: str, question: str, llm: ModelWatch) -> tuple[float, float, int]:
    """Retell's barge-in is a newer response_required whose transcript has the agent's turn
    cut where the caller spoke; the caller's new words here are small talk, answered by a
    template, so that no new generation takes the model."""
    async with websockets.connect(url + f"/retell/llm/call{time.time_ns()}") as ws:
        await ws.recv()  # config
        await ws.send(json.dumps({"interaction_type": "call_details", "call": {}}))
        await ws.recv()  # response 0: the qa flow waits for the caller
        asked = [{"role": "user", "content": question}]
        await ws.send(
            json.dumps({"interaction_type": "response_required", "response_id": 1,
                        "transcript": asked})
        )  # fmt: skip
        while not json.loads(await ws.recv()).get("content"):
            pass
        sent = time.perf_counter()
        cut = [*asked, {"role": "agent", "content": "Sure"}, {"role": "user", "content": "thanks"}]
        await ws.send(
            json.dumps({"interaction_type": "response_required", "response_id": 2,
                        "transcript": cut})
        )  # fmt: skip
        thread_ms = await llm.stopped_after(sent)
        late = 0
        try:
            while True:
                frame = json.loads(await asyncio.wait_for(ws.recv(), 0.5))
                late += frame.get("response_id") == 1
        except TimeoutError:
            return sent, thread_ms, late


async def openai_trial(url: str, question: str, llm: ModelWatch) -> tuple[float, float, int]:
    """Vapi's barge-in is a newer request for the same call.id; the caller's new words are
    small talk again, so that no new generation takes the model."""
    call = {"id": f"vapi{time.time_ns()}"}
    asked = [{"role": "user", "content": question}]
    async with httpx.AsyncClient(base_url=url.replace("ws://", "http://"), timeout=30) as http:
        body = {"model": "m", "stream": True, "messages": asked, "call": call}
        async with http.stream("POST", "/v1/chat/completions", json=body) as first:
            lines = first.aiter_lines()
            async for line in lines:
                if line.startswith("data: {") and content_of(line):
                    break
            sent = time.perf_counter()
            cut = [*asked, {"role": "assistant", "content": "Sure"},
                   {"role": "user", "content": "thanks"}]  # fmt: skip
            newer = {"model": "m", "messages": cut, "call": call}
            second = asyncio.create_task(http.post("/v1/chat/completions", json=newer))
            thread_ms = await llm.stopped_after(sent)
            late = sum(
                [bool(content_of(line)) async for line in lines if line.startswith("data: {")]
            )
            await second
    return sent, thread_ms, late


def content_of(line: str) -> str:
    return str(json.loads(line[6:])["choices"][0]["delta"].get("content") or "")


async def frames_after(ws: websockets.ClientConnection, kind: str) -> int:
    count = 0
    try:
        while True:
            frame = json.loads(await asyncio.wait_for(ws.recv(), 0.5))
            count += frame.get("type") == kind
    except TimeoutError:
        return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20, help="per frontend")
    args = parser.parse_args()
    settings = load_settings(
        VOICE_AGENT_SPEECH="off",  # text turns only: no speech engines
        VOICE_AGENT_DEFAULT_FLOW="qa",
        VOICE_AGENT_RESPONSE_CACHE=False,  # every question must reach the model
        VOICE_AGENT_ANSWER_MAX_SENTENCES=6,
        VOICE_AGENT_LLM_MAX_TOKENS=200,
        VOICE_AGENT_LLM_TIMEOUT_S=30,
        VOICE_AGENT_FIRST_TOKEN_BUDGET_S=10,
    )
    service = build_service(settings)
    assert isinstance(service.llm, LocalModel) and service.llm.supervisor.base_url
    watch = ModelWatch(service.llm.supervisor.base_url)
    clock = ClosingClock(service.llm)
    knowledge = next(t for t in service.responder.tiers if isinstance(t, KnowledgeTier))
    knowledge._llm = clock  # type: ignore[assignment]
    # Baseline: the model's own time between tokens, on a direct uninterrupted generation.
    body = {"messages": [Message("user", QUESTIONS[0]).as_dict()], "max_tokens": 60,
            "stream": True}  # fmt: skip
    url = service.llm.supervisor.base_url + "/chat/completions"
    with httpx.stream("POST", url, json=body, timeout=30) as response:
        last = time.perf_counter()
        for line in response.iter_lines():
            if line.startswith("data: {") and content_of(line):
                now = time.perf_counter()
                clock.gaps_ms.append((now - last) * 1000)
                last = now
    del clock.gaps_ms[0]  # the first "gap" is the prompt's evaluation
    print(
        f"# barge_in: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, "
        f"{args.trials} trials per frontend, bundled SmolLM2-135M\n"
    )
    results: dict[str, tuple[list[float], list[float], list[int]]] = {}
    with Server(create_app(service=service)) as ws_url:
        base = ws_url.removesuffix("/v1/calls")
        trials = (
            ("native", native_trial),
            ("twilio relay", twilio_trial),
            ("retell", retell_trial),
            ("openai chat", openai_trial),
        )
        for name, trial in trials:
            stops: list[float] = []
            threads: list[float] = []
            late: list[int] = []
            for i in range(args.trials):
                before = len(clock.closed_at)
                question = QUESTIONS[i % len(QUESTIONS)]
                sent, thread_ms, frames = asyncio.run(trial(base, question, watch))
                if len(clock.closed_at) > before:
                    stops.append((clock.closed_at[before] - sent) * 1000)
                threads.append(thread_ms)
                late.append(frames)
            results[name] = (stops, threads, late)
    print("| measure (ms) | n | p50 | p95 | p99 |\n|---|---|---|---|---|")
    print(row("model: time between two tokens (baseline)", clock.gaps_ms))
    print(row("all: interrupt sent -> model process saw the client leave", watch.noticed_ms))
    for name, (stops, threads, _) in results.items():
        print(row(f"{name}: interrupt sent -> model stream closed", stops))
        print(row(f"{name}: interrupt sent -> model process stopped", threads))
    print()
    gap = percentile(clock.gaps_ms, 50) if clock.gaps_ms else float("nan")
    for name, (_, threads, late) in results.items():
        print(
            f"{name}: model stopped p99 {percentile(threads, 99):.1f} ms (target 50), "
            f"{percentile(threads, 50) / gap:.2f}x the token gap at p50; text frames after the "
            f"interrupt: {sum(late)} in {len(late)} trials"
        )
    asyncio.run(service.aclose())


if __name__ == "__main__":
    main()
