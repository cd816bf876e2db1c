"""Limits: a request body past VOICE_AGENT_MAX_BODY_BYTES is refused with 413 before the app
reads it, declared or streamed; past VOICE_AGENT_MAX_CALLS (or a key's share) a new call is
closed with 1013 and the reason, and /ready says 503 while the process is full."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
import websockets

from voice_agent.server.service import Service

from ..conftest import call
from ..fakes import FakeLLM

pytestmark = pytest.mark.model

JSON = {"content-type": "application/json"}


def chat(text: str) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": text}]}


async def test_an_oversized_body_is_refused_whole_and_the_service_goes_on(
    make_service: Callable[..., Service], running: Any
) -> None:
    service = make_service(FakeLLM(), VOICE_AGENT_MAX_BODY_BYTES=65536)
    huge = json.dumps(chat("a" * 2_000_000)).encode()

    async def streamed() -> AsyncIterator[bytes]:
        for start in range(0, len(huge), 65536):
            yield huge[start : start + 65536]

    async with running(service) as url, httpx.AsyncClient(base_url=url, timeout=30) as http:
        declared = await http.post("/v1/chat/completions", content=huge, headers=JSON)
        chunked = await http.post("/v1/chat/completions", content=streamed(), headers=JSON)
        fine = await http.post("/v1/chat/completions", json=chat("Do you deliver?"))
    assert declared.status_code == 413 and chunked.status_code == 413
    assert "65536 bytes" in declared.json()["detail"]
    assert fine.status_code == 200 and fine.json()["choices"][0]["message"]["content"]


async def closed_with(url: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    async with websockets.connect(url, additional_headers=headers or {}) as ws:
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 10)
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code, closed.value.rcvd.reason


async def test_past_its_call_limit_the_process_refuses_calls_and_says_it_is_not_ready(
    make_service: Callable[..., Service], running: Any
) -> None:
    service = make_service(FakeLLM(), VOICE_AGENT_MAX_CALLS=2)
    async with running(service) as url, httpx.AsyncClient(base_url=url) as http:
        calls_url = url.replace("http://", "ws://") + "/v1/calls"
        async with call(url) as first, call(url) as second:
            await first.start()
            await second.start()
            code, reason = await closed_with(calls_url)
            full = await http.get("/ready")
        ready = await http.get("/ready")
        async with call(url) as third:
            assert (await third.start())["type"] == "call.ready"
    assert code == 1013 and "limit of 2 calls" in reason
    assert full.status_code == 503 and full.json()["reason"] == "at the limit of 2 calls"
    assert ready.status_code == 200


async def test_a_key_at_its_call_limit_is_refused_and_another_key_is_not(
    make_service: Callable[..., Service], running: Any
) -> None:
    keys = "fe-one:key-one-0123456789abcdef,fe-two:key-two-0123456789abcdef"
    service = make_service(FakeLLM(), VOICE_AGENT_API_KEYS=keys, VOICE_AGENT_MAX_CALLS_PER_KEY=1)
    calls_url = "{}/v1/calls?token={}"
    async with running(service) as url:
        ws_url = url.replace("http://", "ws://")
        one = calls_url.format(ws_url, "key-one-0123456789abcdef")
        async with websockets.connect(one) as held:
            await held.send(json.dumps({"type": "call.start"}))
            assert json.loads(await held.recv())["type"] == "call.ready"
            code, reason = await closed_with(one)
            two = calls_url.format(ws_url, "key-two-0123456789abcdef")
            async with websockets.connect(two) as other:
                await other.send(json.dumps({"type": "call.start"}))
                assert json.loads(await other.recv())["type"] == "call.ready"
    assert code == 1013 and "'fe-one' is at its limit of 1 calls" in reason
