"""VOICE_AGENT_LLM_BACKEND=openai: calls answered through the official openai client against an
OpenAI-compatible server on loopback."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from voice_agent.llm.openai_client import OpenAILLM, delta_of
from voice_agent.rag.encoder import Encoder
from voice_agent.server.build import build_llm, build_service
from voice_agent.server.service import Service
from voice_agent.settings import load_settings

from ..conftest import call, serve
from ..fakes import scaled
from ..openai_server import Behaviour, openai_compatible_app

pytestmark = pytest.mark.model


def openai_service(encoder: Encoder, base_url: str, **overrides: Any) -> Service:
    settings = load_settings(
        VOICE_AGENT_LLM_BACKEND="openai",
        OPENAI_BASE_URL=base_url + "/v1",
        OPENAI_API_KEY="sk-test",
        VOICE_AGENT_LLM_MODEL="test-model",
        **{
            "VOICE_AGENT_DEFAULT_FLOW": "qa",
            "VOICE_AGENT_RESPONSE_CACHE": False,  # unless asked: every question reaches the backend
            **overrides,
        },
    )
    llm = build_llm(settings)
    assert isinstance(llm, OpenAILLM)
    return build_service(settings, encoder=encoder, llm=llm)


def llm_of(service: Service) -> OpenAILLM:
    assert isinstance(service.llm, OpenAILLM)
    return service.llm


async def test_a_call_is_answered_through_the_openai_client(
    encoder: Encoder, running: Callable[[Service], Any]
) -> None:
    behaviour = Behaviour()
    async with serve(openai_compatible_app(behaviour)) as backend:
        service = openai_service(encoder, backend)
        async with running(service) as url, call(url) as client:
            await client.start()
            frames = await client.ask("Do you deliver?")
        await llm_of(service).close()
    done = frames[-1]
    assert done["source"] == "llm" and done["detail"]["llm"] == "openai"
    assert done["text"] == "We deliver for free."
    assert len([f for f in frames if f["type"] == "agent.delta"]) >= 2
    request = behaviour.requests[0]
    assert request["model"] == "test-model" and request["stream"] is True
    assert request["messages"][0]["role"] == "system"
    assert request["messages"][-1]["content"].endswith("Do you deliver?")
    assert behaviour.authorizations[0] == "Bearer sk-test"


async def test_a_failing_openai_backend_gives_the_fallback_and_the_call_goes_on(
    encoder: Encoder, running: Callable[[Service], Any]
) -> None:
    behaviour = Behaviour(status=503)
    async with serve(openai_compatible_app(behaviour)) as backend:
        service = openai_service(encoder, backend)
        async with running(service) as url, call(url) as client:
            await client.start()
            failed = (await client.ask("Do you deliver?"))[-1]
            behaviour.status = 200
            answered = (await client.ask("Do you deliver?"))[-1]
        await llm_of(service).close()
    assert failed["source"] == "fallback" and failed["detail"]["reason"] == "llm_error"
    assert answered["source"] == "llm"


async def test_a_slow_openai_backend_gets_a_filler_then_its_answer(
    encoder: Encoder, running: Callable[[Service], Any]
) -> None:
    behaviour = Behaviour(first_token_s=scaled(0.4))
    async with serve(openai_compatible_app(behaviour)) as backend:
        service = openai_service(
            encoder,
            backend,
            VOICE_AGENT_FIRST_TOKEN_BUDGET_S=scaled(0.1),
            VOICE_AGENT_LLM_TIMEOUT_S=scaled(5),
        )
        async with running(service) as url, call(url) as client:
            await client.start()
            frames = await client.ask("Do you deliver?")
        await llm_of(service).close()
    deltas = [f["text"] for f in frames if f["type"] == "agent.delta"]
    assert deltas[0] == service.settings.filler_text
    assert frames[-1]["source"] == "llm" and frames[-1]["detail"]["filler"] is True


async def test_a_stream_cut_mid_answer_is_never_served_or_cached_as_whole(
    encoder: Encoder, running: Callable[[Service], Any]
) -> None:
    behaviour = Behaviour(tokens=["We ", "open ", "at ", "nine"], cut=True)
    async with serve(openai_compatible_app(behaviour)) as backend:
        service = openai_service(
            encoder, backend, VOICE_AGENT_RESPONSE_CACHE=True, VOICE_AGENT_CACHE_WARM_FAQ=False
        )
        async with running(service) as url, call(url) as client:
            await client.start()
            cut = (await client.ask("When do you open on Saturday?"))[-1]
            assert service.cache is not None and await service.cache.drain(scaled(5))
            again = (await client.ask("When do you open on Saturday?"))[-1]
        await llm_of(service).close()
    assert cut["source"] == "fallback" and cut["detail"]["reason"] == "llm_error"
    assert cut["text"].startswith("We open at nine") and cut["detail"]["partial"] is True
    assert "cache_stored" not in cut["detail"] or cut["detail"]["cache_stored"] is False
    assert again["source"] == "fallback" and len(behaviour.requests) == 2  # nothing cached


@pytest.mark.parametrize(
    ("chunk", "read"),
    [
        ({"choices": [{"delta": {"content": "Hi"}, "finish_reason": None}]}, ("Hi", False)),
        ({"choices": [{"delta": {}, "finish_reason": "stop"}]}, ("", True)),
        ({"choices": [], "usage": {"total_tokens": 9}}, ("", False)),
        ({"choices": [{"delta": {"role": "assistant", "content": None}}]}, ("", False)),
    ],
)
def test_a_streamed_chunk_is_read_as_its_text_and_whether_it_ends(
    chunk: object, read: tuple[str, bool]
) -> None:
    assert delta_of(chunk) == read


@pytest.mark.parametrize(
    "chunk",
    [
        "data",
        {"choices": "Hi"},
        {"choices": ["Hi"]},
        {"choices": [{"delta": "Hi"}]},
        {"choices": [{"delta": {"content": 3}}]},
    ],
)
def test_a_chunk_not_shaped_like_a_completion_is_refused(chunk: object) -> None:
    with pytest.raises(ValueError, match="chunk"):
        delta_of(chunk)


def test_an_error_sent_in_the_stream_is_refused_with_its_message() -> None:
    with pytest.raises(ValueError, match="model overloaded"):
        delta_of({"object": "error", "message": "model overloaded", "code": 503})
