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
from ..fakes import FakeLLM, scaled

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


async def test_chat_turns_in_flight_count_against_the_call_limit_and_past_it_get_429(
    make_service: Callable[..., Service], running: Any
) -> None:
    service = make_service(FakeLLM(first_token_s=scaled(1.0)), VOICE_AGENT_MAX_CALLS=1)
    async with running(service) as url, httpx.AsyncClient(base_url=url, timeout=30) as http:
        slow = asyncio.ensure_future(
            http.post("/v1/chat/completions", json=chat("Do you deliver?"))
        )
        for _ in range(500):  # until the slow turn is in flight: the process is full
            if (await http.get("/ready")).status_code == 503:
                break
            await asyncio.sleep(0.01)
        refused = await http.post("/v1/chat/completions", json=chat("Are you open?"))
        answered = await slow
        after = await http.post("/v1/chat/completions", json=chat("Are you open?"))
    assert refused.status_code == 429 and refused.headers["retry-after"] == "1"
    assert "limit of 1 calls" in refused.json()["detail"]
    assert answered.status_code == 200 and after.status_code == 200


async def test_a_chat_call_past_its_turn_rate_gets_429_and_its_next_minute_is_answered(
    make_service: Callable[..., Service], running: Any
) -> None:
    service = make_service(FakeLLM(), VOICE_AGENT_MAX_TURNS_PER_MINUTE=2)
    body = {**chat("Do you deliver?"), "call": {"id": "vapi-call-1"}}
    async with running(service) as url, httpx.AsyncClient(base_url=url, timeout=30) as http:
        statuses = [
            (await http.post("/v1/chat/completions", json=body)).status_code for _ in range(3)
        ]
        other = await http.post("/v1/chat/completions", json={**body, "call": {"id": "two"}})
        refused = await http.post("/v1/chat/completions", json=body)
    assert statuses == [200, 200, 429] and other.status_code == 200
    assert "turns a minute" in refused.json()["detail"]


async def test_a_socket_that_sends_nothing_for_the_idle_timeout_is_ended(
    make_service: Callable[..., Service], running: Any
) -> None:
    service = make_service(FakeLLM(), VOICE_AGENT_IDLE_TIMEOUT_S=scaled(0.5))
    async with running(service) as url:
        async with call(url) as started:
            await started.start()
            ended = (await started.until("call.ended"))[-1]
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await started.recv()
        code, reason = await closed_with(url.replace("http://", "ws://") + "/v1/calls")
    assert ended["reason"] == "idle_timeout"
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1000
    assert (code, reason) == (1000, "idle timeout")  # a socket that never started a call


async def test_a_call_past_its_duration_hears_the_time_limit_line_and_is_ended(
    make_service: Callable[..., Service], running: Any
) -> None:
    service = make_service(
        FakeLLM(),
        VOICE_AGENT_MAX_CALL_DURATION_S=scaled(1.0),
        VOICE_AGENT_TIME_LIMIT_GOODBYE="That is all the time we have. Goodbye.",
    )
    async with running(service) as url, call(url) as client:
        await client.start()
        frames = await client.until("call.ended")
    said = [f["text"] for f in frames if f["type"] == "agent.done"]
    assert said[-1] == "That is all the time we have. Goodbye."
    assert frames[-1]["reason"] == "time_limit"
