"""Turn latency of the baseline path (mode `disabled`: every turn to knowledge base + LLM).

Drives scripted calls over the real WebSocket against the service on a loopback port. After
each turn, the bundled model is timed alone on the very prompt the service built for it, twice:
over its process boundary (a bare streaming HTTP request to the model process the service
uses) and in this process (a second llama.cpp context of the same file, no boundary). Before
each timing the previous prompt is replayed (untimed) so llama.cpp's prefix cache is in the
state the service saw, then the same caller pause passes. The measurements are seconds apart,
so drift on the machine touches them alike: the service's overhead is the service's first
token less the model's over its boundary, and the boundary's cost is that less the model in
process, turn by turn.

    .venv/bin/python bench/turn_latency.py [--calls 12] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import threading
import time
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# bench/quick_responses.py shares its name with the package: keep this folder off the path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import httpx
import uvicorn
import websockets

from voice_agent.llm.llama_model import LlamaModel
from voice_agent.llm.local import LocalModel
from voice_agent.server.app import create_app
from voice_agent.server.build import build_service, local_model_path
from voice_agent.settings import load_settings
from voice_agent.tiers.knowledge import KnowledgeTier
from voice_agent.types import Message

# Questions for the knowledge base, with the small talk real calls have around them.
SCRIPTS: list[list[str]] = [
    ["Hi there", "What time do you open on Saturday?", "And on Sunday?", "Thanks a lot"],
    ["Do you deliver prescriptions?", "Sorry, can you say that again?", "How much is it?"],
    ["Hello", "How much is a flu shot without insurance?", "Do I need an appointment?"],
    ["Can I transfer my prescription from another pharmacy?", "Thank you so much"],
    ["Are you a real person?", "Do you take Medicare Part D?", "Which plans don't you take?"],
    ["How do I refill a prescription?", "Hold on a second", "Can I get text alerts?"],
    ["Good morning", "Do you carry medication for pets?", "Can someone else pick it up?"],
    ["Where can I dispose of old medication?", "What languages do you speak?", "Thanks"],
]


class RecordingLLM:
    """Passes through to the local model and keeps each prompt, for the direct replay."""

    def __init__(self, inner: LocalModel) -> None:
        self.inner = inner
        self.name = inner.name
        self.prompts: list[tuple[list[Message], int]] = []

    def stream(self, messages: Sequence[Message], max_tokens: int) -> AsyncIterator[str]:
        self.prompts.append((list(messages), max_tokens))
        return self.inner.stream(messages, max_tokens)


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = (len(ordered) - 1) * q / 100
    low, high = int(rank), min(int(rank) + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def row(name: str, values: Sequence[float]) -> str:
    return (
        f"| {name} | {len(values)} | {percentile(values, 50):.1f} | {percentile(values, 95):.1f}"
        f" | {percentile(values, 99):.1f} |"
    )


class Server:
    def __init__(self, app: Any) -> None:
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="bench-server", daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        while not self.server.started:
            time.sleep(0.01)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"ws://127.0.0.1:{port}/v1/calls"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


async def timed_turn(ws: Any, text: str) -> tuple[float, float, dict[str, Any]]:
    """Send a final utterance on a native-protocol socket; milliseconds to the first
    `agent.delta` and to `agent.done`, and the `agent.done` frame."""
    sent = time.perf_counter()
    await ws.send(json.dumps({"type": "user.utterance", "text": text}))
    first = None
    while True:
        frame = json.loads(await ws.recv())
        if frame["type"] == "agent.delta" and first is None:
            first = time.perf_counter()
        if frame["type"] == "agent.done":
            ended = time.perf_counter()
            return ((first or ended) - sent) * 1000, (ended - sent) * 1000, frame


class ModelAlone:
    """The model timed without the service: over its process boundary, and in this process."""

    def __init__(self, base_url: str, in_process: LlamaModel) -> None:
        self.url = base_url + "/chat/completions"
        self.http = httpx.Client(timeout=30)
        self.in_process = in_process

    def over_boundary(self, messages: list[Message], max_tokens: int) -> float:
        """Milliseconds to the first text over a bare streaming request to the model process."""
        body = {
            "messages": [m.as_dict() for m in messages],
            "max_tokens": max_tokens,
            "temperature": 0.2,
            "stream": True,
        }
        started = time.perf_counter()
        first = None
        with self.http.stream("POST", self.url, json=body) as response:
            for line in response.iter_lines():
                if first is None and line.startswith("data: {") and '"content"' in line:
                    delta = json.loads(line[6:])["choices"][0]["delta"]
                    if delta.get("content"):
                        first = time.perf_counter()
        return ((first or time.perf_counter()) - started) * 1000

    def after(self, recorder: RecordingLLM, pause_s: float) -> tuple[float, float]:
        """Both timings on the prompt the service just used, each from the same starting
        state (the previous prompt replayed, then the caller's pause)."""
        messages, max_tokens = recorder.prompts[-1]
        if len(recorder.prompts) > 1:
            previous, previous_max = recorder.prompts[-2]
        else:
            previous, previous_max = [Message("user", "Hello")], 4
        self.over_boundary(previous, previous_max)
        time.sleep(pause_s)
        boundary = self.over_boundary(messages, max_tokens)
        for _ in self.in_process.generate(previous, previous_max):
            pass
        time.sleep(pause_s)
        return boundary, model_first_token_ms(self.in_process, messages, max_tokens)


async def drive_calls(
    url: str, calls: int, pause_s: float, recorder: RecordingLLM, alone: ModelAlone
) -> list[dict[str, Any]]:
    turns = []
    for n in range(calls):
        script = SCRIPTS[n % len(SCRIPTS)]
        async with websockets.connect(url) as ws:
            await ws.send(json.dumps({"type": "call.start", "call_id": f"bench-{n}"}))
            json.loads(await ws.recv())
            for text in script:
                await asyncio.sleep(pause_s)  # the caller speaking; never 0 on a real call
                first_ms, total_ms, frame = await timed_turn(ws, text)
                boundary_ms = in_process_ms = None
                if frame["source"] in ("llm", "fallback"):
                    boundary_ms, in_process_ms = alone.after(recorder, pause_s)
                turns.append(
                    {
                        "text": text,
                        "source": frame["source"],
                        "client_first_token_ms": first_ms,
                        "client_total_ms": total_ms,
                        "server": frame["latency_ms"],
                        "model_alone_first_token_ms": boundary_ms,
                        "model_in_process_first_token_ms": in_process_ms,
                    }
                )
            await ws.send(json.dumps({"type": "call.end"}))
    return turns


def model_first_token_ms(llm: LlamaModel, messages: list[Message], max_tokens: int) -> float:
    started = time.perf_counter()
    pieces = llm.generate(messages, max_tokens)
    first = None
    for _ in pieces:
        if first is None:
            first = time.perf_counter()
    return ((first or time.perf_counter()) - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=16, help="scripted calls to drive")
    parser.add_argument(
        "--pause-s", type=float, default=0.5, help="caller's pause before each turn (s)"
    )
    parser.add_argument(
        "--mode",
        default="disabled",
        choices=["disabled", "shadow", "enabled"],
        help="disabled: every turn to knowledge base + LLM (the baseline); shadow: the same, "
        "with the fast tiers deciding beside it; enabled: fast tiers serve",
    )
    parser.add_argument("--json", help="also write every measurement to this file")
    parser.add_argument(
        "--telemetry", help="the service's telemetry file (VOICE_AGENT_TELEMETRY_FILE)"
    )
    args = parser.parse_args()

    # The embedding cache is off so that every turn pays for its embedding, as a new
    # question would: the overhead measured is the worst case, not the repeat-caller case.
    # The qa flow sends every question to the knowledge base + LLM (the demo flow would
    # route "how do I refill" into collecting a prescription number).
    # The budgets are set out of reach: on a slow machine the filler (an agent.delta at the
    # first-token budget) would stand in for the model's first token and the fallback for its
    # answer, and the bench measures the service's own time, not its budgets.
    settings = load_settings(
        VOICE_AGENT_SPEECH="off",  # text turns only: no speech engines
        LATENCY_OPTIMIZATION_MODE=args.mode,
        VOICE_AGENT_FIRST_TOKEN_BUDGET_S=10,
        VOICE_AGENT_LLM_TIMEOUT_S=30,
        VOICE_AGENT_LLM_STALL_TIMEOUT_S=10,
        VOICE_AGENT_EMBEDDING_CACHE_SIZE=0,
        VOICE_AGENT_DEFAULT_FLOW="qa",
        VOICE_AGENT_TELEMETRY_FILE=args.telemetry,
    )
    print(
        f"# turn_latency: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, "
        f"{platform.processor() or platform.machine()}, mode={settings.mode.value}"
    )
    started = time.perf_counter()
    service = build_service(settings)
    assert isinstance(service.llm, LocalModel) and service.llm.supervisor.base_url
    local = service.llm
    recorder = RecordingLLM(local)
    model_path = local_model_path(settings)
    in_process = LlamaModel(
        model_path, n_threads=settings.llm_threads, n_ctx=settings.llm_context_tokens
    )
    in_process.warm()
    alone = ModelAlone(local.supervisor.base_url, in_process)
    knowledge = next(t for t in service.responder.tiers if isinstance(t, KnowledgeTier))
    knowledge._llm = recorder  # type: ignore[assignment]
    print(f"start-up (models loaded, indexes built, warmed): {time.perf_counter() - started:.1f} s")

    with Server(create_app(service=service)) as url:
        turns = asyncio.run(drive_calls(url, args.calls, args.pause_s, recorder, alone))
    direct = [t["model_alone_first_token_ms"] for t in turns if t["source"] == "llm"]
    in_process_ms = [t["model_in_process_first_token_ms"] for t in turns if t["source"] == "llm"]

    llm_turns = [t for t in turns if t["source"] == "llm"]
    print(
        f"\n{len(turns)} turns over {args.calls} calls; sources: "
        + ", ".join(
            f"{s}={sum(t['source'] == s for t in turns)}"
            for s in sorted({t["source"] for t in turns})
        )
    )
    print("\n| measure (ms) | n | p50 | p95 | p99 |\n|---|---|---|---|---|")
    for source in sorted({t["source"] for t in turns}):
        chosen = [t for t in turns if t["source"] == source]
        print(row(f"first token, {source} (client)", [t["client_first_token_ms"] for t in chosen]))
        print(row(f"total, {source} (client)", [t["client_total_ms"] for t in chosen]))
    print(row("model alone: first token over its process boundary (llm turns)", direct))
    print(row("model alone: first token in process, no boundary (llm turns)", in_process_ms))
    boundary = [
        t["model_alone_first_token_ms"] - t["model_in_process_first_token_ms"] for t in llm_turns
    ]
    print(row("process boundary's cost on first token (paired)", boundary))
    paired = [t["client_first_token_ms"] - t["model_alone_first_token_ms"] for t in llm_turns]
    print(row("service overhead on first token (paired)", paired))
    against_in_process = [
        t["client_first_token_ms"] - t["model_in_process_first_token_ms"] for t in llm_turns
    ]
    print(row("service + boundary on first token (paired, vs in process)", against_in_process))
    # Everything but the model's own time inside the service: retrieval, prompt, hops, socket.
    own = [t["client_first_token_ms"] - t["server"]["llm_first_token"] for t in llm_turns]
    print(row("service's own time to first token", own))
    for stage in ("embedding", "retrieval", "llm_first_token"):
        values = [t["server"][stage] for t in llm_turns if stage in t["server"]]
        print(row(f"server stage: {stage}", values))
    for stage in ("quick", "cache"):  # every turn that reached the tier
        values = [t["server"][stage] for t in turns if stage in t["server"]]
        if values:
            print(row(f"server stage: {stage} (all turns)", values))
    ratio = percentile([t["client_first_token_ms"] for t in llm_turns], 50) / percentile(direct, 50)
    print(f"\nfirst token, service p50 / model alone (over its boundary) p50: {ratio:.2f}x")
    print(
        f"process boundary p50: {percentile(boundary, 50):.1f} ms paired "
        f"(model over its boundary {percentile(direct, 50):.1f} ms, in process "
        f"{percentile(in_process_ms, 50):.1f} ms)"
    )
    print(
        f"service overhead p50: {percentile(paired, 50):.1f} ms paired, "
        f"{percentile(own, 50):.1f} ms own time (target: at most 15 ms)"
    )
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"turns": turns}, out, indent=1)
    asyncio.run(service.aclose())


if __name__ == "__main__":
    main()
