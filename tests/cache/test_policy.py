"""The semantic cache's decision on hand-made neighbourhoods, answer groups, warm answers and
the FAQ parser."""

from __future__ import annotations

import numpy as np

from voice_agent.cache.policy import CachePolicy, Neighbour, decide
from voice_agent.cache.store import CacheHit, CacheMiss, CacheScope, ResponseCache
from voice_agent.cache.warming import WarmAnswer, answering_scopes, faq_pairs, scopes_for
from voice_agent.flows import FlowLibrary
from voice_agent.rag.documents import Document
from voice_agent.settings import BUNDLED_FLOWS_PATH

from ..fakes import ManualClock

# The logic on hand-made numbers, independent of the tuned defaults.
POLICY = CachePolicy(threshold=0.88, agree_mass=1.25, agree_gap=0.2, agree_floor=0.4)
SCOPE = CacheScope("qa", "answer", "kb1")


def n(similarity: float, group: int, question: str = "when do you open") -> Neighbour:
    return Neighbour(similarity, question, group)


def test_the_nearest_question_above_the_threshold_is_served_by_itself() -> None:
    verdict = decide("what time do you open", [n(0.93, 0), n(0.5, 1)], POLICY)
    assert verdict.serve == 0


def test_below_the_threshold_an_agreeing_neighbourhood_is_served() -> None:
    neighbours = [n(0.80, 0), n(0.75, 0), n(0.30, 1)]
    assert decide("what time do you open", neighbours, POLICY).serve == 0


def test_a_lone_neighbour_below_the_threshold_is_not_enough() -> None:
    verdict = decide("what time do you open", [n(0.80, 0), n(0.2, 1)], POLICY)
    assert verdict.serve is None and "few" in verdict.reason


def test_a_close_neighbour_with_another_answer_refuses_the_hit() -> None:
    neighbours = [n(0.80, 0), n(0.75, 0), n(0.70, 1)]
    verdict = decide("what time do you open", neighbours, POLICY)
    assert verdict.serve is None and "another answer" in verdict.reason


def test_a_guard_refusing_the_nearest_lets_an_agreeing_neighbour_serve() -> None:
    neighbours = [n(0.95, 0, "my card arrived"), n(0.90, 0, "my card has not arrived yet")]
    verdict = decide("my card hasn't arrived", neighbours, POLICY)
    assert verdict.serve == 1


def unit(*values: float) -> np.ndarray:
    v = np.array(values, dtype=np.float32)
    return v / np.linalg.norm(v)


def test_answers_worded_differently_share_a_group_unless_a_number_differs() -> None:
    cache = ResponseCache(ttl_s=60, max_entries=100, clock=ManualClock())
    a = cache.store("q1", unit(1, 0, 0), "We open at 9 AM.", SCOPE, answer_vector=unit(1, 0.1, 0))
    b = cache.store(
        "q2", unit(0, 1, 0), "Our doors open at 9 AM.", SCOPE, answer_vector=unit(1, 0.15, 0)
    )
    c = cache.store("q3", unit(0, 0, 1), "We open at 10 AM.", SCOPE, answer_vector=unit(1, 0.12, 0))
    d = cache.store("q4", unit(0, 0, 1), "We open at 9 AM.", SCOPE)  # same text, no vector
    assert a.group == b.group == d.group != c.group


def test_warm_answers_outlive_the_ttl() -> None:
    clock = ManualClock()
    cache = ResponseCache(ttl_s=60, max_entries=100, clock=clock)
    cache.store("are you open sunday", unit(1, 0), "Yes, 10 to 4.", SCOPE, origin="warm")
    cache.store("do you deliver", unit(0, 1), "Yes.", SCOPE)
    clock.advance(3600)
    cache.expire()
    assert isinstance(cache.lookup("are you open sunday", None, SCOPE), CacheHit)
    assert isinstance(cache.lookup("do you deliver", None, SCOPE), CacheMiss)


def test_faq_pairs_are_read_from_q_and_a_paragraphs() -> None:
    doc = Document(
        "faq",
        "FAQ",
        "# FAQ\n\nQ: Are you open on Sunday?\nA: Yes, from 10 AM\nto 4 PM.\n\n"
        "Some prose that is not a pair.\n\nQ: Is there parking?\nA: Yes, behind the building.",
    )
    assert faq_pairs([doc]) == [
        WarmAnswer("Are you open on Sunday?", "Yes, from 10 AM to 4 PM."),
        WarmAnswer("Is there parking?", "Yes, behind the building."),
    ]


def test_warm_answers_go_to_states_that_answer_and_may_be_cached() -> None:
    flows = FlowLibrary.load(BUNDLED_FLOWS_PATH, "pharmacy")
    scopes = answering_scopes(flows.flows.values(), "kb1", "en")
    assert {(s.flow, s.state) for s in scopes} == {("pharmacy", "answer"), ("qa", "answer")}
    only_qa = WarmAnswer("q", "a", flow="qa")
    assert [s.flow for s in scopes_for(only_qa, scopes)] == ["qa"]
