"""The response cache's rules on hand-made vectors: exact and semantic hits, near-miss
guards, scopes (flow, state, knowledge-base version), TTL and flush."""

from __future__ import annotations

import numpy as np
import pytest

from voice_agent.cache import guards as cache_guards
from voice_agent.cache.policy import CachePolicy
from voice_agent.cache.store import CacheHit, CacheMiss, CacheScope, ResponseCache

from ..fakes import ManualClock

SCOPE = CacheScope("pharmacy", "answer", "kb1")


def vec(*values: float) -> np.ndarray:
    v = np.array(values, dtype=np.float32)
    return v / np.linalg.norm(v)


def cache(clock: ManualClock | None = None, threshold: float = 0.9) -> ResponseCache:
    return ResponseCache(
        ttl_s=60,
        max_entries=100,
        policy=CachePolicy(threshold=threshold),
        clock=clock or ManualClock(),
    )


def test_the_same_question_in_other_words_is_an_exact_hit_after_normalization() -> None:
    c = cache()
    c.store("When do you open?", vec(1, 0), "At 9.", SCOPE)
    hit = c.lookup("when do you OPEN", None, SCOPE)
    assert isinstance(hit, CacheHit) and hit.kind == "exact" and hit.entry.answer == "At 9."


def test_a_close_question_is_a_semantic_hit_and_a_far_one_a_miss() -> None:
    c = cache()
    c.store("when do you open", vec(1, 0), "At 9.", SCOPE)
    hit = c.lookup("what time do you open", vec(1, 0.1), SCOPE)
    assert isinstance(hit, CacheHit) and hit.kind == "semantic" and hit.similarity > 0.99
    miss = c.lookup("where do I park", vec(0, 1), SCOPE)
    assert isinstance(miss, CacheMiss) and miss.best_similarity < 0.1


@pytest.mark.parametrize(
    ("stored", "asked"),
    [
        ("my card arrived", "my card hasn't arrived"),
        ("fee to send money to Europe", "fee to send money to Canada"),
        ("price for 2 refills", "price for 3 refills"),
        ("what's your name", "what's my name"),
        ("how do you say your name", "how do you address my name"),
        ("what do i call you", "what do you call me"),
        ("im going to call you xander", "call me bob from now on"),
    ],
)
def test_near_misses_that_change_the_answer_are_refused(stored: str, asked: str) -> None:
    c = cache()
    c.store(stored, vec(1, 0), "answer", SCOPE)
    result = c.lookup(asked, vec(1, 0.01), SCOPE)
    assert isinstance(result, CacheMiss) and result.reason != "served"
    refusals = ("negation differs", "numbers differ", "owner differs", "roles swapped")
    assert result.reason in refusals or "topic" in result.reason


@pytest.mark.parametrize(
    ("stored", "asked"),
    [
        ("what's your name", "can you tell me your name"),
        ("what's my balance", "can you tell me my balance"),
        ("when do you open", "what are the opening hours"),
    ],
)
def test_asking_through_you_or_me_is_not_a_change_of_owner(stored: str, asked: str) -> None:
    assert cache_guards.person(asked, stored) is None


def test_a_longer_way_to_ask_the_same_thing_is_not_a_near_miss() -> None:
    assert cache_guards.near_miss("when do you open", "what time do you open today", True) is None


def test_answers_never_cross_scopes_and_a_new_knowledge_base_starts_empty() -> None:
    c = cache()
    c.store("when do you open", vec(1, 0), "At 9.", SCOPE)
    for other in (
        CacheScope("pharmacy", "done", "kb1"),
        CacheScope("qa", "answer", "kb1"),
        CacheScope("pharmacy", "answer", "kb2"),
        CacheScope("pharmacy", "answer", "kb1", "es"),
    ):
        assert isinstance(c.lookup("when do you open", vec(1, 0), other), CacheMiss)
    assert c.keep_only_knowledge("kb2") == 1
    assert len(c) == 0
    assert isinstance(c.lookup("when do you open", vec(1, 0), SCOPE), CacheMiss)


def test_entries_expire_after_the_ttl_and_flush_empties_everything() -> None:
    clock = ManualClock()
    c = cache(clock)
    c.store("when do you open", vec(1, 0), "At 9.", SCOPE)
    clock.advance(30)
    hit = c.lookup("what time do you open", vec(1, 0.1), SCOPE)
    assert isinstance(hit, CacheHit) and hit.age_s == 30
    clock.advance(31)
    assert isinstance(c.lookup("what time do you open", vec(1, 0.1), SCOPE), CacheMiss)
    assert isinstance(c.lookup("when do you open", vec(1, 0), SCOPE), CacheMiss)
    assert len(c) == 1
    c.expire()  # frees what the TTL has passed
    assert len(c) == 0
    c.store("when do you open", vec(1, 0), "At 9.", SCOPE)
    c.store("where do I park", vec(0, 1), "Behind.", SCOPE)
    assert c.flush() == 2 and len(c) == 0


def test_the_semantic_layer_stays_within_its_size_bound() -> None:
    c = ResponseCache(ttl_s=60, max_entries=50, clock=ManualClock())
    rng = np.random.default_rng(0)
    vectors = [vec(*rng.normal(size=16)) for _ in range(200)]
    for i, v in enumerate(vectors):
        c.store(f"question {i}", v, f"answer {i}", SCOPE)
    assert len(c) <= 50
    # After the oldest were dropped, every vector still leads to its own answer.
    for i in (150, 199):
        hit = c.lookup_semantic(f"question {i}", vectors[i], SCOPE)
        assert isinstance(hit, CacheHit) and hit.entry.answer == f"answer {i}"
    assert isinstance(c.lookup_semantic("question 0", vectors[0], SCOPE), CacheMiss)
