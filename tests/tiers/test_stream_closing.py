"""Closing an answer's stream (a barge-in, a hang-up) closes every stream under it before the
close returns, so the model stops at once instead of when the garbage collector gets to it."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from voice_agent.cache.store import ResponseCache
from voice_agent.llm.local import LocalModel
from voice_agent.tiers.cache import CacheTier
from voice_agent.turn import TurnRecord
from voice_agent.types import Message, Reply, TurnRequest
from voice_agent.utterance import Utterance

from ..fakes import FakeLLM

TOKENS = ("We ", "deliver ", "within ", "five ", "miles.")


async def test_closing_the_local_models_stream_closes_its_http_stream_at_once() -> None:
    supervisor: Any = SimpleNamespace(
        base_url="http://127.0.0.1:9/v1", on_ready=[], state="ready", last_exit=None
    )
    model = LocalModel(supervisor, timeout_s=1, owns_supervisor=False)
    backend = FakeLLM(tokens=TOKENS)
    model._client = backend  # type: ignore[assignment]
    stream = model.stream([Message("user", "Do you deliver?")], max_tokens=20)
    assert await anext(stream) == "We "
    await stream.aclose()
    assert backend.closed == 1 and backend.tokens_sent == 1


async def test_closing_an_answer_the_cache_follows_closes_the_answer_at_once() -> None:
    async def embed(text: str) -> Any:
        raise AssertionError("a cut-off answer is never embedded")

    tier = CacheTier(ResponseCache(ttl_s=60, max_entries=10), embed, lambda: "kb1")
    backend = FakeLLM(tokens=TOKENS)
    request = TurnRequest(
        "call", 1, Utterance("Do you deliver?", embed), "answer", (), TurnRecord("call", 1)
    )
    reply = tier.follow(request, Reply(source="llm", pieces=backend.stream([], 20)))
    assert await anext(reply.pieces) == "We "
    await reply.pieces.aclose()
    assert backend.closed == 1 and backend.tokens_sent == 1


async def test_a_store_check_that_breaks_costs_the_cache_an_answer_not_the_turn() -> None:
    stored: list[str] = []

    async def embed(text: str) -> Any:
        stored.append(text)
        raise AssertionError("an answer whose check failed is never embedded")

    def broken(request: TurnRequest, reply: Reply) -> str | None:
        raise IndexError("a bug in a contradiction rule")

    tier = CacheTier(
        ResponseCache(ttl_s=60, max_entries=10), embed, lambda: "kb1", store_check=broken
    )
    request = TurnRequest(
        "call", 1, Utterance("Do you deliver?", embed), "answer", (), TurnRecord("call", 1)
    )
    reply = tier.follow(request, Reply(source="llm", pieces=FakeLLM(tokens=TOKENS).stream([], 20)))
    assert "".join([piece async for piece in reply.pieces]) == "".join(TOKENS)
    assert reply.detail["cache_stored"] is False and stored == []
    assert await tier.drain(1.0)
