"""The OpenAI-compatible frontend: the official `openai` client, pointed at the service's /v1,
streams an answer (and gets one whole without streaming); Vapi's call.id keeps one session
across requests; the fast tiers answer here too; a body without a user message is refused."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from openai import AsyncOpenAI

from voice_agent.server.service import Service

from ..fakes import FakeLLM, scaled

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


async def test_a_newer_request_for_the_call_ends_the_older_stream_and_uses_what_was_heard(
    make_service: Callable[..., Service], running: Any
) -> None:
    tokens = ["Our ", "hours ", "are "] + ["long "] * 200
    llm = FakeLLM(tokens=tokens, token_interval_s=scaled(0.02))
    service = make_service(llm, VOICE_AGENT_LLM_TIMEOUT_S=60, VOICE_AGENT_LLM_MAX_TOKENS=1000)
    vapi = {"call": {"id": "vapi-barge-in"}}
    asked = [{"role": "user", "content": "What are your hours?"}]
    async with running(service) as url:
        client = AsyncOpenAI(base_url=url + "/v1", api_key="not-needed")
        first = await client.chat.completions.create(
            model="voice-agent",
            messages=asked,
            stream=True,
            extra_body=vapi,  # type: ignore[arg-type]
        )
        pieces = []
        async for chunk in first:
            pieces.append(chunk.choices[0].delta.content or "")
            if "".join(pieces).strip():
                break
        llm.tokens, llm.token_interval_s = ["Yes."], 0
        # The caller spoke over the answer: Vapi's conversation has what was heard of it.
        heard = [*asked, {"role": "assistant", "content": "Our hours"},
                 {"role": "user", "content": "Do you deliver?"}]  # fmt: skip
        second = await client.chat.completions.create(
            model="voice-agent",
            messages=heard,
            extra_body=vapi,  # type: ignore[arg-type]
        )
        rest = [chunk.choices[0].delta.content or "" async for chunk in first]
        await client.close()
    assert second.choices[0].message.content == "Yes."
    assert llm.closed == 2 and len("".join(pieces + rest).split()) < 50  # the old stream ended
    assert [(m.role, m.content) for m in llm.calls[1][-3:-1]] == [
        ("user", "What are your hours?"),
        ("assistant", "Our hours"),
    ]
