"""The shared cache layer against a real redis-server: two server processes (`voice-agent serve`)
share answers through it, and killing Redis in the middle of a call fails no turn.

Both processes answer through the openai backend pointed at a small OpenAI-compatible server in
this test, so every LLM call is counted and the answers are known."""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from ..conftest import CallClient, call, serve
from ..fakes import scaled
from ..openai_server import Behaviour, openai_compatible_app
from ..redis_server import RedisServer
from ..service_process import service_process

pytestmark = [
    pytest.mark.model,
    pytest.mark.skipif(
        shutil.which("redis-server") is None,
        reason="redis-server is not installed (`make install` installs it with apt-get)",
    ),
]


async def shared_stats(url: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=url) as http:
        stats: dict[str, Any] = (await http.get("/healthz")).json()["cache"]["shared"]
        return stats


async def wait_for(url: str, key: str, predicate: Any, wait_s: float = 10) -> dict[str, Any]:
    deadline = time.monotonic() + scaled(wait_s)
    while True:
        stats = await shared_stats(url)
        if predicate(stats[key]):
            return stats
        if time.monotonic() > deadline:
            raise AssertionError(f"{key} never matched: {stats}")
        await asyncio.sleep(0.1)


async def answer(client: CallClient, text: str) -> dict[str, Any]:
    frames = await client.ask(text)
    assert not [f for f in frames if f["type"] == "error"], frames
    return frames[-1]


async def test_two_processes_share_answers_and_survive_redis_dying_mid_call(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    behaviour = Behaviour(tokens=["We ", "deliver ", "within ", "5 ", "miles."])
    async with (
        serve(openai_compatible_app(behaviour)) as llm_url,
        service_process(tmp_path, redis_server.url, llm_url) as first_process,
        service_process(tmp_path, redis_server.url, llm_url) as second_process,
    ):
        first, second = first_process.url, second_process.url
        await wait_for(first, "connected", bool)
        await wait_for(second, "connected", bool)
        async with call(first) as client:
            await client.start()
            made = await answer(client, "Do you deliver prescriptions?")
        assert made["source"] == "llm" and len(behaviour.requests) == 1
        await wait_for(second, "applied", lambda n: n >= 1)
        async with call(second) as client:
            await client.start()
            shared = await answer(client, "do you deliver prescriptions")
            semantic = await answer(client, "Can you deliver my prescriptions?")
        assert shared["source"] == "cache" and shared["text"] == "We deliver within 5 miles."
        assert semantic["source"] == "cache"
        assert len(behaviour.requests) == 1  # the second process never asked the LLM

        # Redis dies in the middle of a call: every turn is still answered.
        behaviour.tokens = ["Parking ", "is ", "behind ", "the ", "building."]
        async with call(first) as client:
            await client.start()
            before = await answer(client, "Is there parking?")
            redis_server.kill()
            turns = [
                await answer(client, "Do you deliver prescriptions?"),
                await answer(client, "Where do I park my car?"),
                await answer(client, "Do you sell stamps?"),
                await answer(client, "Is there parking?"),
            ]
            await wait_for(first, "connected", lambda up: not up)
            turns.append(await answer(client, "Do you take insurance?"))
        assert before["source"] == "llm"
        sources = [t["source"] for t in turns]
        assert set(sources) <= {"llm", "cache"} and all(t["text"] for t in turns), turns
        assert sources[0] == sources[3] == "cache"  # this process's own answers

        # Redis comes back: both processes reconnect and share again.
        redis_server.start()
        await wait_for(first, "connected", bool, wait_s=20)
        await wait_for(second, "connected", bool, wait_s=20)
        applied = (await shared_stats(second))["applied"]
        behaviour.tokens = ["We ", "are ", "closed ", "on ", "holidays."]
        async with call(first) as client:
            await client.start()
            await answer(client, "Are you open on holidays?")
        await wait_for(second, "applied", lambda n: n > applied)
        async with call(second) as client:
            await client.start()
            again = await answer(client, "are you open on holidays")
        assert again["source"] == "cache"
