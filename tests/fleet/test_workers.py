"""`voice-agent serve --workers 2`: two processes answer on one port, each names itself in
/health, a scrape of /metrics from either sums both (open calls, turns), a worker that dies is
replaced while the other keeps answering, and SIGTERM drains both and exits 0. Without Redis
the processes could not share flags, so start-up refuses with one line."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path

import httpx
import pytest

from ..conftest import serve
from ..fakes import scaled
from ..openai_server import Behaviour, openai_compatible_app
from ..redis_server import RedisServer
from ..service_process import callers, service_process

pytestmark = pytest.mark.model

ANSWER = "We deliver to your door for free within five miles."


def metric(text: str, name: str) -> float:
    """The sum of a metric's samples (every label set) in a Prometheus text page."""
    pattern = re.compile(rf"^{name}(?:{{[^}}]*}})? (\S+)$", re.MULTILINE)
    return sum(float(value) for value in pattern.findall(text))


async def names_seen(http: httpx.AsyncClient, url: str, tries: int = 200) -> dict[str, int]:
    """Which processes answer /health, over fresh connections."""
    seen: dict[str, int] = {}
    for _ in range(tries):
        async with httpx.AsyncClient() as fresh:  # a new connection each time
            process = (await fresh.get(url + "/health")).json()["process"]
        seen[process["name"]] = process["workers"]
        if len(seen) >= 2:
            break
    return seen


async def until(check: Callable[[], Awaitable[bool]], wait_s: float, what: str) -> None:
    deadline = time.monotonic() + scaled(wait_s)
    while not await check():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.1)


async def test_two_workers_share_a_port_and_their_metrics_and_drain_together(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    behaviour = Behaviour(tokens=[f"{w} " for w in ANSWER.split()], token_s=0.01)
    async with AsyncExitStack() as stack:
        llm_url = await stack.enter_async_context(serve(openai_compatible_app(behaviour)))
        env = {
            "VOICE_AGENT_WORKERS": "2",
            "VOICE_AGENT_RESPONSE_CACHE": "false",
            "VOICE_AGENT_DRAIN_TIMEOUT_S": "3",  # then the goodbye to the calls still open
        }
        service = await stack.enter_async_context(
            service_process(tmp_path, redis_server.url, llm_url, **env)
        )
        http = await stack.enter_async_context(httpx.AsyncClient(base_url=service.url))
        # Both workers come up (the first healthy answer may come before the second is up).
        seen: dict[str, int] = {}

        async def both() -> bool:
            seen.update(await names_seen(http, service.url, tries=20))
            return len(seen) >= 2

        await until(both, 120, f"only {seen} answered")
        assert set(seen.values()) == {2}

        # Open calls and turns summed over both workers, whichever one answers the scrape.
        async with callers(service.url, 6, stack) as calls:
            for caller in calls:
                await caller.start()
            for caller in calls:
                assert (await caller.ask("Do you deliver?"))["text"] == ANSWER

            async def six_open() -> bool:
                pages = [(await http.get("/metrics")).text for _ in range(6)]
                return all(metric(page, "voice_active_calls") == 6 for page in pages)

            await until(six_open, 5, "the open calls are not summed over the workers")
            page = (await http.get("/metrics")).text
            assert metric(page, "voice_turns_total") == 6, page  # six answers
            # ... while each process holds only its own share of the calls.
            spread: dict[str, int] = {}
            for _ in range(200):
                async with httpx.AsyncClient() as fresh:
                    health = (await fresh.get(service.url + "/health")).json()
                spread[health["process"]["name"]] = health["active_calls"]
                if len(spread) == 2:
                    break
            assert sum(spread.values()) == 6 and max(spread.values()) < 6, spread
            for caller in calls[:3]:
                await caller.ws.close()

            async def three_open() -> bool:
                page = (await http.get("/metrics")).text
                return metric(page, "voice_active_calls") == 3

            await until(three_open, 5, "closed calls still counted")

            # SIGTERM: both workers drain, the open calls hear the goodbye, the parent exits 0.
            service.sigterm()
            for caller in calls[3:]:
                ended = await caller.until_ended()
                assert ended["type"] == "call.ended", ended
            assert await service.exited(wait_s=40) == 0
    log = service.log_path.read_text()
    drained = re.findall(r"\[worker (\d+)\] voice_agent.server.drain \[DRAIN\] \d+ calls in", log)
    assert len(set(drained)) == 2, drained  # each worker drained its own calls


async def test_a_dead_worker_is_replaced_while_the_other_answers(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    async with AsyncExitStack() as stack:
        llm_url = await stack.enter_async_context(serve(openai_compatible_app(Behaviour())))
        service = await stack.enter_async_context(
            service_process(tmp_path, redis_server.url, llm_url, VOICE_AGENT_WORKERS="2")
        )
        http = await stack.enter_async_context(httpx.AsyncClient(base_url=service.url))
        first: dict[str, int] = {}

        async def both() -> bool:
            first.update(await names_seen(http, service.url, tries=20))
            return len(first) >= 2

        await until(both, 120, "the second worker never answered")
        victim = int(sorted(first)[0].rsplit(":", 1)[1])
        os.kill(victim, signal.SIGKILL)
        # The survivor answers at once, the replacement once it has loaded its models.
        assert (await http.get("/ready")).status_code == 200
        now: dict[str, int] = {}

        async def replaced() -> bool:
            now.update(await names_seen(http, service.url, tries=20))
            return len(set(now) - set(first)) >= 1

        await until(replaced, 120, f"no new worker: {now}")
        assert f"worker {victim} killed by SIGKILL; restarting" in service.log_path.read_text()


def test_several_workers_without_redis_refuse_to_start(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOICE_AGENT_")}
    done = subprocess.run(
        [sys.executable, "-m", "voice_agent", "serve", "--workers", "2", "--port", "0"],
        env=env, capture_output=True, text=True, timeout=scaled(60), cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode != 0
    assert "2 workers need VOICE_AGENT_REDIS_URL" in done.stderr, done.stderr
