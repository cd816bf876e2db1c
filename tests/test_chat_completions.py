"""The OpenAI-compatible frontend: the official `openai` client, pointed at the service's /v1,
streams an answer (and gets one whole without streaming); Vapi's call.id keeps one session
across requests; the fast tiers answer here too; a body without a user message is refused."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from openai import AsyncOpenAI

from voice_agent.service import Service

from .fakes import FakeLLM

pytestmark = pytest.mark.model

ANSWER = "Maple Street Pharmacy opens at 9 AM."


async def test_the_openai_client_streams_an_answer_from_the_service(
    make_service: Callable[..., Service], running: Any
) -> None:
    llm = FakeLLM()
    async with running(make_service(llm)) as url:
        client = AsyncOpenAI(base_url=url + "/v1", api_key="not-needed")
        stream = await client.chat.completions.create(
            model="voice-agent",
            messages=[{"role": "user", "content": "What time do you open on Saturday?"}],
            stream=True,
        )
        pieces = [c.choices[0].delta.content or "" async for c in stream]
        whole = await client.chat.completions.create(
            model="voice-agent",
            messages=[{"role": "user", "content": "When do you open on Saturdays?"}],
        )
        await client.close()
    assert len([p for p in pieces if p]) > 1 and "".join(pieces) == ANSWER
    assert whole.choices[0].message.content == ANSWER
    assert whole.choices[0].finish_reason == "stop"


async def test_a_vapi_call_id_keeps_one_session_and_the_fast_tiers_answer(
    make_service: Callable[..., Service], running: Any
) -> None:
    llm = FakeLLM()
    async with running(make_service(llm)) as url:
        client = AsyncOpenAI(base_url=url + "/v1", api_key="not-needed")
        vapi = {"call": {"id": "vapi-call-7"}, "customer": {"number": "+15550123"}}
        first = await client.chat.completions.create(
            model="voice-agent",
            messages=[{"role": "user", "content": "What time do you open on Saturday?"}],
            extra_body=vapi,
        )
        hello = await client.chat.completions.create(
            model="voice-agent",
            messages=[{"role": "user", "content": "hello there"}],
            extra_body=vapi,
        )
        await client.chat.completions.create(
            model="voice-agent",
            messages=[{"role": "user", "content": "Do you deliver?"}],
            extra_body=vapi,
        )
        await client.close()
    assert first.choices[0].message.content == ANSWER
    assert hello.choices[0].message.content == "Hello! How can I help you today?"
    # The session kept the call's history: the third prompt holds the first exchange.
    contents = [m.content for m in llm.calls[-1]]
    assert "What time do you open on Saturday?" in contents and ANSWER in contents


async def test_a_body_without_a_user_message_is_refused(
    make_service: Callable[..., Service], running: Any
) -> None:
    async with running(make_service(FakeLLM())) as url, httpx.AsyncClient(base_url=url) as http:
        no_user = await http.post(
            "/v1/chat/completions", json={"messages": [{"role": "system", "content": "hi"}]}
        )
        empty = await http.post("/v1/chat/completions", json={"messages": []})
    assert no_user.status_code == 400 and "no user message" in no_user.text
    assert empty.status_code == 422
