"""A fleet on one machine: first-word latency through HAProxy in front of three service
processes sharing one redis-server, and through one `serve --workers 2`, against one process
reached directly (the baseline, measured in the same run with the same calls).

Each setup gets the same load as bench/concurrency.py (concurrent calls, each a script of small
talk, FAQ questions and knowledge-base questions, a caller's pause between turns) over an LLM
stand-in. In the HAProxy setup, a flag change is then sent through the balancer and timed until
all three processes report it, and one process is drained (SIGTERM) while the calls go on:
calls cut and turns that failed are counted. On 2 cores the three processes, the balancer, Redis,
the stand-in and the load generator share the same cores, so the ratios show what the hop and
the extra processes cost here, not what a fleet of machines gains. Loopback only, bounded.

    .venv/bin/python bench/fleet.py [--calls 32] [--turns 6]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path

# bench/quick_responses.py shares its name with the package: keep this folder off the path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from concurrency import free_port, level, process, service_env, summary
from turn_latency import percentile

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests.haproxy import haproxy
from tests.redis_server import RedisServer


@contextmanager
def services(count: int, model_port: int, redis_url: str | None, **extra: str) -> Iterator[list]:
    """`count` serve processes; yields [(url, pid), ...] once all are ready."""
    with ExitStack() as stack:
        started = []
        for _ in range(count):
            port = free_port()
            env = {**service_env(port, model_port), "VOICE_AGENT_DRAIN_TIMEOUT_S": "60", **extra}
            if redis_url:
                env["VOICE_AGENT_REDIS_URL"] = redis_url
            url = f"http://127.0.0.1:{port}"
            serve = [str(ROOT / ".venv/bin/voice-agent"), "serve"]
            started.append((url, stack.enter_context(process(serve, env, url + "/ready"))))
        yield started


def run_level(http_url: str, calls: int, turns: int, pause_s: float) -> tuple[list[dict], int]:
    """A short unreported warm-up (first calls pay for lazy set-up), then the measured load."""
    ws_url = http_url.replace("http://", "ws://") + "/v1/calls"
    asyncio.run(level(ws_url, 4, 3, pause_s))
    return asyncio.run(level(ws_url, calls, turns, pause_s))


def row(name: str, results: list[dict], failed: int, baseline: list[dict] | None) -> str:
    ratio = "1.00"
    if baseline:
        mine = [r["first_ms"] for r in results]
        base = [r["first_ms"] for r in baseline]
        ratio = f"{percentile(mine, 50) / percentile(base, 50):.2f} / " + (
            f"{percentile(mine, 95) / percentile(base, 95):.2f}"
        )
    return (
        f"| {name} | {len(results)} | {summary('quick', results)} | {summary('cache', results)} "
        f"| {summary('llm', results)} | {ratio} | {failed} |"
    )


def flag_spread_ms(balancer: str, backends: list[str], percent: int) -> float:
    """PATCH through the balancer; ms until every process's flags say so."""
    with httpx.Client() as http:
        http.get(balancer + "/health")  # connections open before the clock starts
        for url in backends:
            http.get(url + "/health")
        started = time.perf_counter()
        reply = http.patch(balancer + "/v1/admin/flags", json={"rollout_percent": percent})
        reply.raise_for_status()
        waiting = set(backends)
        while waiting:
            for url in list(waiting):
                if http.get(url + "/v1/admin/flags").json()["rollout_percent"] == percent:
                    waiting.discard(url)
            if time.perf_counter() - started > 10:
                raise RuntimeError(f"{sorted(waiting)} never followed the flag change")
        return (time.perf_counter() - started) * 1000


def drain_under_load(balancer: str, victim: int, calls: int, turns: int, pause_s: float) -> str:
    """The calls run through the balancer while one process is sent SIGTERM a second in."""

    async def go() -> tuple[list[dict], int]:
        ws_url = balancer.replace("http://", "ws://") + "/v1/calls"
        loop = asyncio.get_running_loop()
        loop.call_later(1.0, os.kill, victim, signal.SIGTERM)
        return await level(ws_url, calls, turns, pause_s)

    results, failed = asyncio.run(go())
    return f"{len(results)} turns answered, {failed} calls failed (of {calls})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=32, help="concurrent calls")
    parser.add_argument("--turns", type=int, default=6, help="turns per call")
    parser.add_argument("--pause-s", type=float, default=1.5, help="caller's pause (s), +-50%%")
    parser.add_argument("--model-first-token-s", type=float, default=0.3)
    args = parser.parse_args()
    model_port = free_port()
    stand_in = process(
        [sys.executable, str(Path(__file__).resolve().parent / "concurrency.py"), "--stand-in"],
        {"MODEL_PORT": str(model_port), "FIRST_TOKEN_S": str(args.model_first_token_s)},
        f"http://127.0.0.1:{model_port}/ready",
    )
    print(
        f"# fleet: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, "
        f"{args.calls} calls at once x {args.turns} turns, LLM stand-in first token "
        f"{args.model_first_token_s} s, caller pause {args.pause_s} s +-50%"
    )
    print(
        "\nEach setup starts on its own (the same flags, a cold cache of answers), warms up with 4"
        " calls, then takes the load.\n"
    )
    print(
        "| setup | turns | quick p50 / p95 / p99 ms (n) | cache p50 / p95 / p99 (n) "
        "| llm p50 / p95 / p99 (n) | first word vs baseline (p50 / p95) | failed calls |"
    )
    print("|---|---|---|---|---|---|---|")
    load = (args.calls, args.turns, args.pause_s)
    notes = []
    with stand_in, tempfile.TemporaryDirectory() as tmp:
        redis = RedisServer(Path(tmp))
        redis.start()
        try:
            with services(1, model_port, None) as [(url, _)]:
                baseline, failed = run_level(url, *load)
                print(row("one process, direct (baseline)", baseline, failed, None), flush=True)
            with services(3, model_port, redis.url) as backends:
                urls = [url for url, _ in backends]
                with haproxy(Path(tmp), urls) as balancer:
                    results, failed = run_level(balancer, *load)
                    print(row("3 processes behind HAProxy", results, failed, baseline), flush=True)
                    spread = [flag_spread_ms(balancer, urls, p) for p in (20, 30, 40, 50, 60)]
                    notes.append(
                        "flag PATCH through HAProxy until all 3 processes follow: "
                        + ", ".join(f"{ms:.1f}" for ms in spread)
                        + " ms"
                    )
                    drained = drain_under_load(balancer, backends[0][1], *load)
                    notes.append(f"one of 3 processes drained mid-load: {drained}")
            # A Redis database of its own: the flags changed above would carry over.
            workers_redis = redis.url.rsplit("/", 1)[0] + "/1"
            with services(1, model_port, workers_redis, VOICE_AGENT_WORKERS="2") as [(url, _)]:
                results, failed = run_level(url, *load)
                print(row("serve --workers 2, direct", results, failed, baseline), flush=True)
        finally:
            redis.kill()
    print()
    for note in notes:
        print(f"- {note}")


if __name__ == "__main__":
    main()
