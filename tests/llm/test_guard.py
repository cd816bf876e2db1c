from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import pytest

from voice_agent.errors import LLMTimeout, LLMUnavailable
from voice_agent.llm.guard import guarded
from voice_agent.types import Budgets, Message

from ..fakes import FakeLLM, scaled, settle


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


@pytest.fixture
async def loop_errors() -> AsyncIterator[list[dict[str, Any]]]:
    """What the event loop would report as unhandled (a task's exception never retrieved)."""
    loop = asyncio.get_running_loop()
    errors: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _, context: errors.append(context))
    yield errors
    loop.set_exception_handler(None)


async def test_a_read_that_fails_while_the_filler_is_out_is_not_left_unretrieved(
    loop_errors: list[dict[str, Any]],
) -> None:
    """The filler goes out while a read is in flight; the read then fails (the backend drops)
    and the caller hangs up: the failure is part of the abandoned answer, not an error the
    loop reports later as "Task exception was never retrieved"."""
    dropped = asyncio.Event()

    async def drops_late() -> AsyncGenerator[str, None]:
        await dropped.wait()
        raise LLMUnavailable("the backend dropped the stream")
        yield ""  # an async generator  # pragma: no cover

    answer = guarded(drops_late(), Budgets(first_token_s=0.0, stall_s=10, total_s=10))
    assert await anext(answer) == ("filler", "")
    dropped.set()
    await settle()  # the read has failed while the filler was being spoken
    await answer.aclose()  # the caller hung up
    del answer
    gc.collect()
    await settle()
    assert loop_errors == []


async def test_a_barge_in_stays_a_cancellation_when_the_read_fails_as_it_stops() -> None:
    async def resets_when_stopped() -> AsyncGenerator[str, None]:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            raise ConnectionResetError("the backend reset as it was stopped") from None
        yield ""  # an async generator  # pragma: no cover

    answer = guarded(resets_when_stopped(), Budgets(10, 10, 10))
    turn = asyncio.create_task(anext(answer))
    await settle()
    turn.cancel()  # barge-in
    with pytest.raises(asyncio.CancelledError):
        await turn
