"""The per-key call limit across the fleet: with Redis, a key's calls on every process count,
read at most a second late; a process that hangs up frees the key's share everywhere."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import pytest
import websockets

from voice_agent.server.service import Service

from ..fakes import FakeLLM, scaled
from ..redis_server import RedisServer

pytestmark = pytest.mark.model

ONE, TWO = "key-one-0123456789abcdef", "key-two-0123456789abcdef"
KEYS = f"fe-one:{ONE},fe-two:{TWO}"


async def opened(ws: Any) -> bool:
    """Whether the call started (True) or was refused at once with 1013 (False)."""
    try:
        await ws.send(json.dumps({"type": "call.start"}))
        frame = json.loads(await asyncio.wait_for(ws.recv(), scaled(10)))
    except websockets.ConnectionClosed as closed:
        assert closed.rcvd is not None and closed.rcvd.code == 1013, closed
        assert "'fe-one' is at its limit of 2 calls" in closed.rcvd.reason
        return False
    return bool(frame["type"] == "call.ready")


async def until_refused(url: str, within_s: float) -> None:
    """New calls with key one are refused once the other process's calls are counted."""
    deadline = time.monotonic() + within_s
    while True:
        async with websockets.connect(url) as ws:
            if not await opened(ws):
                return
        assert time.monotonic() < deadline, "the other process's calls were never counted"
        await asyncio.sleep(0.1)


async def test_a_keys_calls_on_every_process_count_towards_its_limit(
    make_service: Callable[..., Service], running: Any, redis_server: RedisServer
) -> None:
    settings = {
        "VOICE_AGENT_REDIS_URL": redis_server.url,
        "VOICE_AGENT_API_KEYS": KEYS,
        "VOICE_AGENT_MAX_CALLS_PER_KEY": 2,
    }
    a, b = make_service(FakeLLM(), **settings), make_service(FakeLLM(), **settings)
    async with running(a) as url_a, running(b) as url_b:
        on_a = url_a.replace("http://", "ws://") + f"/v1/calls?token={ONE}"
        on_b = url_b.replace("http://", "ws://") + f"/v1/calls?token={ONE}"
        two_on_a = url_a.replace("http://", "ws://") + f"/v1/calls?token={TWO}"
        async with websockets.connect(on_a) as first, websockets.connect(on_b) as second:
            assert await opened(first) and await opened(second)  # one on each process
            await until_refused(on_a, scaled(3))  # the third, on A, counts B's
            async with websockets.connect(two_on_a) as other_key:
                assert await opened(other_key)  # another key has its own share
            await second.close()  # B's call hangs up: the share is free again
            deadline = time.monotonic() + scaled(3)
            while True:
                async with websockets.connect(on_a) as again:
                    if await opened(again):
                        break
                assert time.monotonic() < deadline, "B's ended call still counted"
                await asyncio.sleep(0.2)
