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

Callers use their own words by default (`--mix varied`: CLINC150's `test` small talk, the FAQ in
paraphrases from bench/data/faq_paraphrases.yaml); `--mix fixed` replays the few fixed lines of
the runs before 2026-12-06. The CPU of the load generator and of the model stand-in is reported
beside the service's: on a small machine they share its cores. `--workers N` runs
`serve --workers N` with a redis-server; `--profile FILE` writes py-spy's samples of the last
level (py-spy installed separately: `pip install py-spy`); `--dashboard` polls the dashboard's
data once a second during each level, as the page does, and times it.

    .venv/bin/python bench/concurrency.py [--levels 1,4,16,32] [--backend remote|local]
        [--mix varied|fixed] [--workers N] [--profile prof.txt] [--dashboard]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, nullcontext
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# bench/quick_responses.py shares its name with the package: keep this folder off the path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import httpx
import websockets

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dashboard_poll import Polls, poll_live
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


SMALL_TALK_INTENTS = ("greeting", "thank_you", "repeat", "are_you_a_bot", "what_is_your_name")
KINDS = ("small talk", "faq", "knowledge")


def varied_pools() -> tuple[list[str], list[str], list[str]]:
    """Callers' own words: CLINC150's `test` small talk (crowd-sourced, never used to tune the
    templates' thresholds on `test`), the FAQ in paraphrases (bench/data/faq_paraphrases.yaml)
    and the knowledge-base questions."""
    import importlib.util

    import yaml

    # Loaded by its path: this folder stays off sys.path (see the top of the file).
    spec = importlib.util.spec_from_file_location("clinc_split", ROOT / "bench/clinc_split.py")
    assert spec is not None and spec.loader is not None
    clinc_split = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(clinc_split)
    data = clinc_split.load()
    small_talk = [text for text, intent in data["test"] if intent in SMALL_TALK_INTENTS]
    paraphrases = yaml.safe_load((ROOT / "bench/data/faq_paraphrases.yaml").read_text())
    faq = [line for lines in paraphrases.values() for line in lines]
    return small_talk, faq, KNOWLEDGE


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


def cpu_seconds(pid: int, thread: int | None = None) -> float:
    """A process's CPU, or one of its threads' (the main thread's id is the process's)."""
    stat = f"/proc/{pid}/task/{thread}/stat" if thread else f"/proc/{pid}/stat"
    fields = Path(stat).read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


Pools = tuple[list[str], list[str], list[str]]
FIXED: Pools = (SMALL_TALK, FAQ, KNOWLEDGE)


async def one_call(
    url: str, n: int, turns: int, pause_s: float, rng: random.Random, pools: Pools = FIXED
) -> list[dict]:
    script = []
    for t in range(turns):
        kind = (n + t) % 3
        pool = pools[kind]
        script.append((KINDS[kind], pool[(n * 7 + t) % len(pool)]))
    results = []
    await asyncio.sleep(rng.uniform(0, pause_s))  # calls do not all start at once
    async with websockets.connect(url, open_timeout=30) as ws:
        await ws.send(json.dumps({"type": "call.start", "call_id": f"load-{n}-{time.time_ns()}"}))
        json.loads(await ws.recv())
        for kind, text in script:
            await asyncio.sleep(pause_s * rng.uniform(0.5, 1.5))  # the caller speaking
            first_ms, _, done = await asyncio.wait_for(timed_turn(ws, text), 60)
            results.append({
                "kind": kind, "source": done["source"], "first_ms": first_ms,
                "filler": bool(done["detail"].get("filler")),
                "reason": done["detail"].get("reason"),
            })  # fmt: skip
        await ws.send(json.dumps({"type": "call.end"}))
    return results


async def level(
    url: str, calls: int, turns: int, pause_s: float, pools: Pools = FIXED
) -> tuple[list[dict], int]:
    rng = random.Random(calls)
    outcomes = await asyncio.gather(
        *(one_call(url, n, turns, pause_s, rng, pools) for n in range(calls)),
        return_exceptions=True,
    )
    failed = sum(isinstance(o, BaseException) for o in outcomes)
    return [r for o in outcomes if isinstance(o, list) for r in o], failed


async def polled_level(
    url: str, calls: int, turns: int, pause_s: float, pools: Pools, dashboard: str | None
) -> tuple[list[dict], int, Polls | None]:
    """A level, with `dashboard` (the service's http URL) the dashboard's poll timed once a
    second while its calls run."""
    if dashboard is None:
        return (*await level(url, calls, turns, pause_s, pools), None)
    stop = asyncio.Event()
    poller = asyncio.ensure_future(poll_live(dashboard, stop))
    try:
        results, failed = await level(url, calls, turns, pause_s, pools)
    finally:
        stop.set()
    return results, failed, await poller


def summary(source: str, results: list[dict]) -> str:
    times = [r["first_ms"] for r in results if r["source"] == source]
    if not times:
        return "-"
    return (f"{percentile(times, 50):.0f} / {percentile(times, 95):.0f} / "
            f"{percentile(times, 99):.0f} ({len(times)})")  # fmt: skip


def served_share(results: list[dict]) -> str:
    """How often small talk got a template and an FAQ wording a cached answer."""

    def share(kind: str, source: str) -> str:
        asked = [r for r in results if r.get("kind") == kind]
        hits = sum(r["source"] == source for r in asked)
        return f"{100 * hits / len(asked):.0f}%" if asked else "-"

    return f"{share('small talk', 'quick')} / {share('faq', 'cache')}"


def tree_cpu_seconds(pid: int) -> tuple[float, float]:
    """CPU of a process and its descendants (the workers of `serve --workers`): all of it, and
    their main threads' (the event loops; the rest is the encoder's thread and other helpers)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    total, loops, todo = 0.0, 0.0, [pid]
    while todo:
        current = todo.pop()
        try:
            total += cpu_seconds(current)
            loops += cpu_seconds(current, current)
        except OSError:
            continue
        todo.extend(children.get(current, []))
    return total, loops


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
        "VOICE_AGENT_MAX_CALLS": "0",  # the bench finds the limit; the service's guard is off
        "VOICE_AGENT_SPEECH": "off",  # text calls only: no speech engines
    }
    if model_port is not None:
        env.update({
            "VOICE_AGENT_LLM_BACKEND": "openai",
            "OPENAI_BASE_URL": f"http://127.0.0.1:{model_port}/v1",
            "OPENAI_API_KEY": "unused", "VOICE_AGENT_LLM_MODEL": "stand-in",
        })  # fmt: skip
    return env


def scored_so_far(http_url: str, workers: int) -> tuple[int, int | None, dict[str, float]]:
    """Answers scored and let go so far, and the encoder's load: from /health for one process;
    with several workers the scored count from /metrics (summed over them), nothing else."""
    if workers == 1:
        health = httpx.get(http_url + "/health").json()
        scoring = health["quality_scoring"]
        return scoring["scored"], scoring["skipped"], health["encoder_load"]
    page = httpx.get(http_url + "/metrics").text
    counts = [line.rsplit(" ", 1)[1] for line in page.splitlines()
              if line.startswith("voice_quality_score_count")]  # fmt: skip
    return int(sum(float(c) for c in counts)), None, {}


def encoder_note(before: dict[str, float], after: dict[str, float], took_s: float) -> str:
    """The encoder thread's share of the level's time, for calls and for background work."""
    if not after:
        return "-"
    delta = {k: after[k] - before[k] for k in after}
    per = delta["call_sentences"] / max(1, delta["call_batches"])
    return (
        f"{delta['call_busy_s'] / took_s:.0%} ({delta['call_sentences']:.0f} in batches of "
        f"{per:.1f}) / {delta['background_busy_s'] / took_s:.0%} "
        f"({delta['background_sentences']:.0f})"
    )


@contextmanager
def profiled(pid: int, out: Path | None) -> Iterator[None]:
    """py-spy samples the service (its workers too) while the block runs, if asked for."""
    if out is None:
        yield
        return
    spy = subprocess.Popen(
        ["py-spy", "record", "-p", str(pid), "--subprocesses", "--threads", "--nonblocking",
         "-r", "100", "-d", "3600", "--format", "raw", "-o", str(out)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        yield
    finally:
        spy.send_signal(signal.SIGINT)  # py-spy writes what it has on SIGINT
        spy.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", default="1,4,8,16,32", help="concurrent calls per level")
    parser.add_argument("--turns", type=int, default=6, help="turns per call")
    parser.add_argument("--pause-s", type=float, default=1.5, help="caller's pause (s), +-50%%")
    parser.add_argument("--backend", choices=["remote", "local"], default="remote")
    parser.add_argument("--model-first-token-s", type=float, default=0.3)
    parser.add_argument(
        "--mix", choices=["varied", "fixed"], default="varied",
        help="callers' own words (CLINC150 small talk, FAQ paraphrases) or the fixed lines of "
        "the runs before 2026-12-06",
    )  # fmt: skip
    parser.add_argument("--workers", type=int, default=1, help="serve --workers (with Redis)")
    parser.add_argument("--profile", type=Path, help="py-spy samples of the last level, here")
    parser.add_argument(
        "--dashboard", action="store_true",
        help="poll /v1/dashboard/live once a second during each level, as the page does",
    )  # fmt: skip
    args = parser.parse_args()
    levels = [int(x) for x in args.levels.split(",")]
    pools = varied_pools() if args.mix == "varied" else FIXED
    port = free_port()
    stand_in: Any = nullcontext(None)
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
        if model_port is not None
        else "bundled SmolLM2-135M"
    )
    print(
        f"# concurrency: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, "
        f"backend {args.backend} ({model}), {args.turns} turns per call, "
        f"caller pause {args.pause_s} s +-50%, {args.mix} words, {args.workers} worker(s)"
    )
    print(
        "\n| calls at once | turns | quick p50 / p95 / p99 ms (n) | cache p50 / p95 / p99 (n) "
        "| llm p50 / p95 / p99 (n) | small talk → quick / FAQ → cache | fallbacks | filler "
        "| failed calls | CPU cores: service / load / model "
        "| service CPU ms a turn: all / event loop | answers scored / not "
        "| encoder thread busy: calls (sentences) / background (sentences) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    serve = [str(ROOT / ".venv/bin/voice-agent"), "serve"]
    with ExitStack() as stack:
        if args.workers > 1:
            sys.path.insert(0, str(ROOT))
            from tests.redis_server import RedisServer

            redis = RedisServer(Path(stack.enter_context(tempfile.TemporaryDirectory())))
            redis.start()
            stack.callback(redis.kill)
            env.update({"VOICE_AGENT_WORKERS": str(args.workers),
                        "VOICE_AGENT_REDIS_URL": redis.url})  # fmt: skip
        model_pid = stack.enter_context(stand_in)
        http_url = f"http://127.0.0.1:{port}"
        pid = stack.enter_context(process(serve, env, http_url + "/ready"))
        url = f"ws://127.0.0.1:{port}/v1/calls"
        dashboard_lines: list[str] = []
        for calls in levels:
            last = calls == levels[-1]
            (cpu, loop_cpu), wall = tree_cpu_seconds(pid), time.monotonic()
            model_cpu = cpu_seconds(model_pid) if model_pid else 0.0
            load_cpu = sum(os.times()[:2])
            before = scored_so_far(http_url, args.workers)
            with profiled(pid, args.profile if last else None):
                dashboard = http_url if args.dashboard else None
                results, failed, polls = asyncio.run(
                    polled_level(url, calls, args.turns, args.pause_s, pools, dashboard)
                )
                if polls is not None:
                    dashboard_lines.append(f"- {calls} calls: {polls.summary()}")
            took = time.monotonic() - wall
            cpu_after, loop_after = tree_cpu_seconds(pid)
            busy = (cpu_after - cpu) / took
            # The steadiest figures on a noisy machine: what a turn costs the service's CPU,
            # and the event loop's share of it (the rest is mostly the encoder's thread, whose
            # background work grows into whatever the calls leave).
            per_turn = busy * took * 1000 / max(1, len(results))
            loop_per_turn = (loop_after - loop_cpu) * 1000 / max(1, len(results))
            load = (sum(os.times()[:2]) - load_cpu) / took
            model_busy = (cpu_seconds(model_pid) - model_cpu) / took if model_pid else 0.0
            time.sleep(2)  # scoring that was under way finishes
            after = scored_so_far(http_url, args.workers)
            scored = after[0] - before[0]
            skipped = "-" if after[1] is None or before[1] is None else after[1] - before[1]
            encoder = encoder_note(before[2], after[2], took + 2)
            fallbacks = sum(r["source"] == "fallback" for r in results)
            filler = sum(r["filler"] for r in results)
            print(
                f"| {calls} | {len(results)} | {summary('quick', results)} | "
                f"{summary('cache', results)} | {summary('llm', results)} | "
                f"{served_share(results)} | {fallbacks} | {filler} | {failed} | "
                f"{busy:.2f} / {load:.2f} / {model_busy:.2f} | "
                f"{per_turn:.1f} / {loop_per_turn:.1f} | {scored} / {skipped} | {encoder} |",
                flush=True,
            )
        if dashboard_lines:
            print("\nThe dashboard's poll (/v1/dashboard/live, once a second) during each level:")
            print("\n".join(dashboard_lines))


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
