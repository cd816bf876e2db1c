"""The latency each frontend adds: the same turns over the native protocol, Twilio
ConversationRelay, Retell's custom LLM socket and the OpenAI-compatible endpoint.

The service runs with the bundled encoder on a loopback port; the turns are small talk that
quick responses answer from templates, so the tier's own time is the same few milliseconds
everywhere and what differs is the frontend: decoding its frames, routing events, encoding
its frames (and for the OpenAI endpoint, an HTTP request and Server-Sent Events). The clock
runs client side from sending the caller's final words to the first words of the answer. The
frontends take turns, call by call, so drift on the machine touches them alike; the native
protocol is the baseline.

    .venv/bin/python bench/frontends.py [--calls 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# bench/quick_responses.py shares its name with the package: keep this folder off the path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import httpx
import websockets

sys.path.insert(0, str(Path(__file__).resolve().parent))
from turn_latency import Server, percentile, row, timed_turn

from voice_agent.server.app import create_app
from voice_agent.server.build import build_service
from voice_agent.settings import load_settings

TURNS = ["Hi there", "Are you a real person?", "Sorry, can you say that again?", "Thanks a lot"]
PAUSE_S = 0.3  # the caller speaking between turns

Trial = Callable[[str, int], Awaitable[list[float]]]


async def native(base: str, n: int) -> list[float]:
    times = []
    async with websockets.connect(base.replace("http", "ws") + "/v1/calls") as ws:
        await ws.send(json.dumps({"type": "call.start", "call_id": f"native-{n}"}))
        await ws.recv()
        for text in TURNS:
            await asyncio.sleep(PAUSE_S)
            times.append((await timed_turn(ws, text))[0])
    return times


async def twilio(base: str, n: int) -> list[float]:
    times = []
    async with websockets.connect(base.replace("http", "ws") + "/twilio/relay") as ws:
        await ws.send(json.dumps({"type": "setup", "callSid": f"CA-{n}-{time.time_ns()}"}))
        for text in TURNS:
            await asyncio.sleep(PAUSE_S)
            sent = time.perf_counter()
            await ws.send(json.dumps({"type": "prompt", "voicePrompt": text, "last": True}))
            first = None
            while True:
                frame = json.loads(await ws.recv())
                if frame["type"] == "text" and first is None:
                    first = time.perf_counter()
                if frame["type"] == "text" and frame["last"]:
                    break
            times.append(((first or time.perf_counter()) - sent) * 1000)
    return times


async def retell(base: str, n: int) -> list[float]:
    times = []
    url = base.replace("http", "ws") + f"/retell/llm/retell-{n}-{time.time_ns()}"
    async with websockets.connect(url) as ws:
        await ws.recv()  # config
        await ws.send(json.dumps({"interaction_type": "call_details", "call": {}}))
        await ws.recv()  # response 0
        transcript: list[dict[str, str]] = []
        for response_id, text in enumerate(TURNS, start=1):
            await asyncio.sleep(PAUSE_S)
            transcript.append({"role": "user", "content": text})
            sent = time.perf_counter()
            await ws.send(
                json.dumps({"interaction_type": "response_required", "response_id": response_id,
                            "transcript": transcript})
            )  # fmt: skip
            first, said = None, []
            while True:
                frame = json.loads(await ws.recv())
                if frame["content"] and first is None:
                    first = time.perf_counter()
                said.append(frame["content"])
                if frame["content_complete"]:
                    break
            transcript.append({"role": "agent", "content": "".join(said)})
            times.append(((first or time.perf_counter()) - sent) * 1000)
    return times


async def openai_chat(base: str, n: int) -> list[float]:
    times = []
    messages: list[dict[str, str]] = []
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        for text in TURNS:
            await asyncio.sleep(PAUSE_S)
            messages.append({"role": "user", "content": text})
            body = {"model": "voice-agent", "stream": True, "messages": messages,
                    "call": {"id": f"vapi-{n}"}}  # fmt: skip
            sent = time.perf_counter()
            first, said = None, []
            async with http.stream("POST", "/v1/chat/completions", json=body) as response:
                async for line in response.aiter_lines():
                    if not line.startswith("data: {"):
                        continue
                    delta = json.loads(line[6:])["choices"][0]["delta"].get("content")
                    if delta and first is None:
                        first = time.perf_counter()
                    said.append(delta or "")
            messages.append({"role": "assistant", "content": "".join(said)})
            times.append(((first or time.perf_counter()) - sent) * 1000)
    return times


FRONTENDS: dict[str, Trial] = {
    "native (baseline)": native,
    "twilio relay": twilio,
    "retell": retell,
    "openai chat (SSE)": openai_chat,
}


async def drive(base: str, calls: int) -> dict[str, list[float]]:
    results: dict[str, list[float]] = {name: [] for name in FRONTENDS}
    names = list(FRONTENDS)
    for n in range(calls):
        for name in names[n % len(names) :] + names[: n % len(names)]:
            results[name].extend(await FRONTENDS[name](base, n))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20, help="calls per frontend")
    args = parser.parse_args()
    settings = load_settings(
        VOICE_AGENT_SPEECH="off",  # text turns only: no speech engines
        VOICE_AGENT_DEFAULT_FLOW="qa",
        VOICE_AGENT_AUDIT_LOG="",
        VOICE_AGENT_RETELL_DETAILS_WAIT_S=1.0,
    )
    print(
        f"# frontends: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, "
        f"{platform.processor() or platform.machine()}, {args.calls} calls x {len(TURNS)} "
        "turns per frontend, answers from quick responses"
    )
    service = build_service(settings)
    with Server(create_app(service=service)) as ws_url:
        base = ws_url.removesuffix("/v1/calls").replace("ws://", "http://")
        results = asyncio.run(drive(base, args.calls))
    asyncio.run(service.aclose())
    print("\n| first words, client (ms) | n | p50 | p95 | p99 |\n|---|---|---|---|---|")
    for name, times in results.items():
        print(row(name, times))
    baseline = results["native (baseline)"]
    print()
    for name, times in results.items():
        print(
            f"{name}: p50 {percentile(times, 50) - percentile(baseline, 50):+.2f} ms, "
            f"p99 {percentile(times, 99) - percentile(baseline, 99):+.2f} ms against native "
            f"({percentile(times, 50) / percentile(baseline, 50):.2f}x at p50)"
        )


if __name__ == "__main__":
    main()
