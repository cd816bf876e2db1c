"""The first-token budget (filler), the hard limit (fallback) and the circuit breaker, driven by
a fake LLM with set latencies."""

from __future__ import annotations

import numpy as np

from voice_agent.llm.circuit_breaker import CircuitBreaker
from voice_agent.tiers.knowledge import KnowledgeConfig, KnowledgeTier
from voice_agent.turn import TurnRecord
from voice_agent.types import Budgets, Message, Reply, TurnRequest, Vector
from voice_agent.utterance import Utterance

from ..fakes import FakeLLM, FakeRetriever, ManualClock, scaled

FILLER = "One moment."
FALLBACK = "Sorry, try again."


def config(first: float = 0.05, stall: float = 0.2, total: float = 0.4) -> KnowledgeConfig:
    return KnowledgeConfig(
        business="Maple Street Pharmacy",
        budgets=Budgets(scaled(first), scaled(stall), scaled(total)),
        max_tokens=64,
        max_sentences=3,
        prompt_passages=3,
        history_turns=4,
        filler_text=FILLER,
        fallback_text=FALLBACK,
    )


async def toy_embedding(text: str) -> Vector:
    """The utterance's embedding, which the tier hands to the retriever (the fake ignores it)."""
    return np.ones(4, dtype=np.float32) / 2


def request(text: str = "When do you open on Saturday?") -> TurnRequest:
    return TurnRequest(
        call_id="c1",
        turn_id=1,
        utterance=Utterance(text, toy_embedding),
        state="default",
        history=(Message("user", "hi"), Message("assistant", "Hello.")),
        record=TurnRecord("c1", 1),
    )


async def spoken(reply: Reply) -> list[str]:
    return [piece async for piece in reply.pieces]


def tier(llm: FakeLLM, breaker: CircuitBreaker | None = None, **budgets: float) -> KnowledgeTier:
    breaker = breaker or CircuitBreaker(3, 30, clock=ManualClock())
    return KnowledgeTier(FakeRetriever(), llm, breaker, config(**budgets))


async def test_a_fast_answer_streams_word_by_word_and_is_grounded_in_the_prompt() -> None:
    llm = FakeLLM()
    reply = await tier(llm).respond(request())
    pieces = await spoken(reply)
    assert reply.source == "llm"
    assert "".join(pieces) == "Maple Street Pharmacy opens at 9 AM."
    assert len(pieces) > 1
    assert "filler" not in reply.detail
    prompt = llm.calls[0]
    assert prompt[0].role == "system" and "Maple Street Pharmacy" in prompt[0].content
    assert prompt[-1].role == "user"
    assert "opens at 9 AM on Saturdays" in prompt[-1].content
    assert prompt[-1].content.endswith("When do you open on Saturday?")
    assert [m.content for m in prompt[-3:-1]] == ["hi", "Hello."]


async def test_first_token_budget_sends_a_filler_while_the_answer_keeps_coming() -> None:
    llm = FakeLLM(first_token_s=scaled(0.15))
    reply = await tier(llm, first=0.03, total=2.0).respond(request())
    pieces = await spoken(reply)
    assert pieces[0] == FILLER
    assert reply.source == "llm"
    assert reply.detail["filler"] is True
    assert "".join(pieces) == f"{FILLER} Maple Street Pharmacy opens at 9 AM."


async def test_hard_limit_ends_the_turn_with_the_fallback_line() -> None:
    llm = FakeLLM(first_token_s=scaled(5))
    reply = await tier(llm, first=0.03, total=0.15).respond(request())
    pieces = await spoken(reply)
    assert "".join(pieces) == f"{FILLER} {FALLBACK}"
    assert reply.source == "fallback"
    assert reply.detail["reason"] == "timeout_first_token"
    assert llm.closed == 1


async def test_a_stalled_answer_is_finished_with_the_fallback() -> None:
    llm = FakeLLM(stall_after=3)
    reply = await tier(llm, stall=0.05, total=5).respond(request())
    text = "".join(await spoken(reply))
    assert text.endswith(FALLBACK)
    assert reply.source == "fallback"
    assert reply.detail["reason"] == "timeout_stall"
    assert reply.detail["partial"] is True


async def test_circuit_breaker_answers_with_the_fallback_at_once_until_cooldown() -> None:
    clock = ManualClock()
    breaker = CircuitBreaker(failures=2, cooldown_s=10, clock=clock)
    llm = FakeLLM(fail=True)
    knowledge = tier(llm, breaker)
    for _ in range(2):
        reply = await knowledge.respond(request())
        assert await spoken(reply) == [FALLBACK]
        assert reply.detail["reason"] == "llm_error"
    assert breaker.state == "open"
    reply = await knowledge.respond(request())
    assert await spoken(reply) == [FALLBACK]
    assert reply.detail["reason"] == "circuit_open"
    assert len(llm.calls) == 2  # the open circuit did not wait on the LLM

    llm.fail = False
    clock.advance(10)
    reply = await knowledge.respond(request())
    assert reply.source == "llm"
    assert "".join(await spoken(reply)) == "Maple Street Pharmacy opens at 9 AM."
    assert breaker.state == "closed"


async def test_an_answer_with_nothing_speakable_becomes_the_fallback() -> None:
    llm = FakeLLM(tokens=["**", " ", "##"])
    reply = await tier(llm).respond(request())
    assert await spoken(reply) == [FALLBACK]
    assert reply.source == "fallback"
    assert reply.detail["reason"] == "empty_answer"


async def test_a_turn_cancelled_mid_answer_stops_the_llm_and_counts_as_no_failure() -> None:
    breaker = CircuitBreaker(failures=1, cooldown_s=10, clock=ManualClock())
    llm = FakeLLM(tokens=["word "] * 50, token_interval_s=scaled(0.01))
    reply = await tier(llm, breaker, total=5).respond(request())
    async for _ in reply.pieces:
        break
    await reply.pieces.aclose()  # type: ignore[attr-defined]
    assert llm.closed == 1
    assert llm.tokens_sent < 50
    assert breaker.state == "closed"
