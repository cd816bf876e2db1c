"""Concurrent calls: how first-word latency holds as more calls talk to one service process.

The service runs as its own process (`voice-agent serve` on a loopback port, so the load
generator does not share its interpreter), in `enabled` mode with the bundled encoder. The LLM
is either a stand-in for a hosted model (an OpenAI-compatible server in a third process that
answers after `--model-first-token-s`; the service's own work is then all that runs here) or
the bundled SmolLM2-135M on the same cores (`--backend local`). At each level, that many calls
run at once, each a script of small talk (quick responses), FAQ questions (the response cache)
and questions for the knowledge base (the LLM), with a caller's pause between turns. Per level:
first-word latency per tier, client side; fallbacks; failed calls; the service process's CPU
(cores busy, from /proc); answers the quality tracker scored, and those it let go because
scoring was behind (calls' embeddings go first). Loopback only, bounded in calls, turns and time.

    .venv/bin/python bench/concurrency.py [--levels 1,4,16,32] [--backend remote|local]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# bench/quick_responses.py shares its name with the package: keep this folder off the path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import httpx
import websockets

sys.path.insert(0, str(Path(__file__).resolve().parent))
from turn_latency import percentile, timed_turn

ROOT = Path(__file__).resolve().parent.parent
SMALL_TALK = ["Hi there", "Thanks a lot", "Sorry, can you say that again?", "Hold on a second"]
FAQ = ["Is there parking?", "Where are you located?", "What is your fax number?",
       "How long does a refill take?", "Do you take Aetna?"]  # fmt: skip
KNOWLEDGE = [
    "Do you carry medication for pets?",
    "Can someone else pick up my prescription?",
    "What languages do your pharmacists speak?",
    "Where can I dispose of old medication?",
    "Do you sell blood pressure monitors?",
    "Can I get my prescriptions by mail?",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def process(args: list[str], env: dict[str, str], ready_url: str) -> Iterator[int]:
    """Run a server process until the block ends; yields its pid once `ready_url` answers."""
    proc = subprocess.Popen(args, env={**os.environ, **env}, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                if httpx.get(ready_url, timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None:
                raise RuntimeError(f"{args[0]} exited with {proc.returncode}")
            time.sleep(0.5)
        else:
            raise RuntimeError(f"{ready_url} not ready after 180 s")
        yield proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def one_call(url: str, n: int, turns: int, pause_s: float, rng: random.Random) -> list[dict]:
    script = []
    for t in range(turns):
        pool = (SMALL_TALK, FAQ, KNOWLEDGE)[(n + t) % 3]
        script.append(pool[(n * 7 + t) % len(pool)])
    results = []
    await asyncio.sleep(rng.uniform(0, pause_s))  # calls do not all start at once
    async with websockets.connect(url, open_timeout=30) as ws:
        await ws.send(json.dumps({"type": "call.start", "call_id": f"load-{n}-{time.time_ns()}"}))
        json.loads(await ws.recv())
        for text in script:
            await asyncio.sleep(pause_s * rng.uniform(0.5, 1.5))  # the caller speaking
            first_ms, _, done = await asyncio.wait_for(timed_turn(ws, text), 60)
            results.append({
                "source": done["source"], "first_ms": first_ms,
                "filler": bool(done["detail"].get("filler")),
                "reason": done["detail"].get("reason"),
            })  # fmt: skip
        await ws.send(json.dumps({"type": "call.end"}))
    return results


async def level(url: str, calls: int, turns: int, pause_s: float) -> tuple[list[dict], int]:
    rng = random.Random(calls)
    outcomes = await asyncio.gather(
        *(one_call(url, n, turns, pause_s, rng) for n in range(calls)), return_exceptions=True
    )
    failed = sum(isinstance(o, BaseException) for o in outcomes)
    return [r for o in outcomes if isinstance(o, list) for r in o], failed


def summary(source: str, results: list[dict]) -> str:
    times = [r["first_ms"] for r in results if r["source"] == source]
    if not times:
        return "-"
    return (f"{percentile(times, 50):.0f} / {percentile(times, 95):.0f} / "
            f"{percentile(times, 99):.0f} ({len(times)})")  # fmt: skip


def service_env(port: int, model_port: int | None) -> dict[str, str]:
    """The service's settings for a load bench: the LLM stand-in at `model_port` (None: the
    bundled model)."""
    env = {
        "HF_HUB_OFFLINE": "1",
        "VOICE_AGENT_PORT": str(port),
        "VOICE_AGENT_DEFAULT_FLOW": "qa",
        "VOICE_AGENT_AUDIT_LOG": "",
        "VOICE_AGENT_LOG_LEVEL": "WARNING",
        "VOICE_AGENT_CACHE_MIN_QUALITY": "100",  # keep the cache to its FAQ: tiers stay put
        # Every turn pays for its embedding, as callers' own words would: the scripts repeat.
        "VOICE_AGENT_EMBEDDING_CACHE_SIZE": "0",
    }
    if model_port is not None:
        env.update({
            "VOICE_AGENT_LLM_BACKEND": "openai",
            "OPENAI_BASE_URL": f"http://127.0.0.1:{model_port}/v1",
            "OPENAI_API_KEY": "unused", "VOICE_AGENT_LLM_MODEL": "stand-in",
        })  # fmt: skip
    return env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", default="1,4,8,16,32", help="concurrent calls per level")
    parser.add_argument("--turns", type=int, default=6, help="turns per call")
    parser.add_argument("--pause-s", type=float, default=1.5, help="caller's pause (s), +-50%%")
    parser.add_argument("--backend", choices=["remote", "local"], default="remote")
    parser.add_argument("--model-first-token-s", type=float, default=0.3)
    args = parser.parse_args()
    levels = [int(x) for x in args.levels.split(",")]
    port = free_port()
    model_env: dict[str, str] = {}
    stand_in: Any = None
    model_port = free_port() if args.backend == "remote" else None
    env = service_env(port, model_port)
    if model_port is not None:
        model_env = {"MODEL_PORT": str(model_port), "FIRST_TOKEN_S": str(args.model_first_token_s)}
        stand_in = process(
            [sys.executable, str(Path(__file__).resolve()), "--stand-in"],
            model_env,
            f"http://127.0.0.1:{model_port}/ready",
        )
    model = (
        f"stand-in, first token {args.model_first_token_s} s"
        if stand_in is not None
        else "bundled SmolLM2-135M"
    )
    print(
        f"# concurrency: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, "
        f"backend {args.backend} ({model}), {args.turns} turns per call, "
        f"caller pause {args.pause_s} s +-50%"
    )
    print(
        "\n| calls at once | turns | quick p50 / p95 / p99 ms (n) | cache p50 / p95 / p99 (n) "
        "| llm p50 / p95 / p99 (n) | fallbacks | filler | failed calls | service CPU (cores) "
        "| answers scored / not |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    serve = [str(ROOT / ".venv/bin/voice-agent"), "serve"]
    with (
        stand_in if stand_in is not None else nullcontext(),
        process(serve, env, f"http://127.0.0.1:{port}/ready") as pid,
    ):
        url = f"ws://127.0.0.1:{port}/v1/calls"
        health = f"http://127.0.0.1:{port}/health"
        for calls in levels:
            cpu, wall = cpu_seconds(pid), time.monotonic()
            before = httpx.get(health).json()["quality_scoring"]
            results, failed = asyncio.run(level(url, calls, args.turns, args.pause_s))
            busy = (cpu_seconds(pid) - cpu) / (time.monotonic() - wall)
            time.sleep(2)  # scoring that was under way finishes
            after = httpx.get(health).json()["quality_scoring"]
            scored = after["scored"] - before["scored"]
            skipped = after["skipped"] - before["skipped"]
            fallbacks = sum(r["source"] == "fallback" for r in results)
            filler = sum(r["filler"] for r in results)
            print(
                f"| {calls} | {len(results)} | {summary('quick', results)} | "
                f"{summary('cache', results)} | {summary('llm', results)} | {fallbacks} | "
                f"{filler} | {failed} | {busy:.2f} | {scored} / {skipped} |"
            )


def stand_in_model() -> None:
    """A hosted model's stand-in: answers every request after FIRST_TOKEN_S."""
    import uvicorn
    from fastapi import FastAPI

    sys.path.insert(0, str(ROOT))
    from tests.openai_server import Behaviour, openai_compatible_app

    behaviour = Behaviour(
        tokens=["Maple ", "Street ", "Pharmacy ", "can ", "help ", "with ", "that."],
        first_token_s=float(os.environ["FIRST_TOKEN_S"]),
    )
    app: FastAPI = openai_compatible_app(behaviour)

    @app.get("/ready")
    async def ready() -> dict[str, bool]:
        return {"ready": True}

    uvicorn.run(app, host="127.0.0.1", port=int(os.environ["MODEL_PORT"]), log_level="warning")


if __name__ == "__main__":
    if sys.argv[1:] == ["--stand-in"]:
        stand_in_model()
    else:
        main()
