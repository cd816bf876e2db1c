from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from voice_agent.errors import LLMTimeout
from voice_agent.llm.guard import guarded
from voice_agent.types import Budgets, Message

from ..fakes import FakeLLM, scaled


def budgets(first: float = 0.05, stall: float = 0.1, total: float = 0.5) -> Budgets:
    return Budgets(first_token_s=scaled(first), stall_s=scaled(stall), total_s=scaled(total))


async def collect(stream: AsyncIterator[tuple[str, str]]) -> list[tuple[str, str]]:
    return [event async for event in stream]


def stream_of(llm: FakeLLM) -> AsyncIterator[str]:
    return llm.stream([Message("user", "hi")], max_tokens=16)


async def test_a_fast_stream_passes_through_without_filler() -> None:
    llm = FakeLLM(tokens=["a", "b", "c"])
    events = await collect(guarded(stream_of(llm), budgets()))
    assert events == [("token", "a"), ("token", "b"), ("token", "c")]


async def test_a_late_first_token_brings_one_filler_then_the_answer() -> None:
    llm = FakeLLM(tokens=["a", "b"], first_token_s=scaled(0.15))
    events = await collect(guarded(stream_of(llm), budgets(first=0.03, total=1.0)))
    assert events == [("filler", ""), ("token", "a"), ("token", "b")]


async def test_no_first_token_by_the_hard_limit_raises_and_closes_the_stream() -> None:
    llm = FakeLLM(first_token_s=scaled(5))
    with pytest.raises(LLMTimeout) as caught:
        await collect(guarded(stream_of(llm), budgets(first=0.02, total=0.1)))
    assert caught.value.phase == "first_token"
    assert llm.closed == 1


async def test_a_stall_between_tokens_raises_after_the_stall_limit() -> None:
    llm = FakeLLM(tokens=["a", "b", "c"], stall_after=1)
    events: list[tuple[str, str]] = []
    with pytest.raises(LLMTimeout) as caught:
        async for event in guarded(stream_of(llm), budgets(stall=0.05, total=5)):
            events.append(event)
    assert events == [("token", "a")]
    assert caught.value.phase == "stall"
    assert llm.closed == 1


async def test_tokens_that_keep_coming_past_the_hard_limit_are_cut_off() -> None:
    llm = FakeLLM(tokens=["t"] * 100, token_interval_s=scaled(0.02))
    with pytest.raises(LLMTimeout) as caught:
        await collect(guarded(stream_of(llm), budgets(stall=1, total=0.2)))
    assert caught.value.phase == "total"
    assert llm.tokens_sent < 100
