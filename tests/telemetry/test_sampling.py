"""Quality scoring under load: past what the encoder can score, each source's answers are scored
as a uniform random sample, shared fairly between sources (a rare source in full), and the
rates come back to 1 when the load goes; the tracker's windows and `/health` say the rates."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import numpy as np
import pytest

from voice_agent.rag.encoder import Vectors
from voice_agent.telemetry.event import TurnEvent
from voice_agent.telemetry.quality import MAX_PENDING, QualityTracker, weighted_mean
from voice_agent.telemetry.sampling import PERIOD_S, Sampler, fair_rates


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_fair_rates_meet_small_demands_in_full_and_share_the_rest_evenly() -> None:
    rates = fair_rates(30.0, {"fallback": 2.0, "llm": 40.0, "quick": 60.0, "cache": 0.0})
    assert rates["fallback"] == 1.0
    # 28 a second left for llm and quick: 14 each.
    assert rates["llm"] == pytest.approx(14 / 40) and rates["quick"] == pytest.approx(14 / 60)
    assert "cache" not in rates
    assert fair_rates(100.0, {"llm": 40.0, "quick": 60.0}) == {"llm": 1.0, "quick": 1.0}


def test_every_answer_is_drawn_until_a_drawn_one_finds_no_room() -> None:
    clock = Clock()
    sampler = Sampler(seed=1, clock=clock)
    for step in range(1000):
        clock.now = step * 0.05  # 20 answers a second for 50 s, never short of room
        assert sampler.draw("llm")
        sampler.began()
        sampler.finished()
    assert sampler.rates == {} and sampler.sampled_out == 0


def test_a_full_period_sets_rates_to_the_capacity_seen_and_they_recover_when_load_goes() -> None:
    clock = Clock()
    sampler = Sampler(seed=7, clock=clock)
    # One period: 100 llm answers and 4 fallbacks a second; scoring never stops, 10 scorings
    # a second finish, and the queue is full.
    sampler.began()
    for i in range(int(PERIOD_S * 100)):
        clock.now = i / 100
        sampler.draw("llm")
        if i % 25 == 0:
            sampler.draw("fallback")
        if i % 10 == 0:
            sampler.finished()
            sampler.began()
    sampler.no_room()
    clock.now = PERIOD_S
    drawn = {"llm": 0, "fallback": 0}
    for i in range(int(PERIOD_S * 100)):  # the next period, the same load
        clock.now = PERIOD_S + i / 100
        drawn["llm"] += sampler.draw("llm")
        if i % 25 == 0:
            drawn["fallback"] += sampler.draw("fallback")
        if i % 10 == 0:
            sampler.finished()
            sampler.began()
    sampler.finished()
    assert sampler.rate("fallback") == 1.0 and drawn["fallback"] == 20
    assert sampler.rate("llm") == pytest.approx(6 / 100, rel=0.05)
    # A uniform sample: about the rate's share of the period's answers, early and late alike.
    assert 15 <= drawn["llm"] <= 45
    # Still 104 answers a second, but no drawn answer is turned away any more: the capacity is
    # assumed a quarter higher each period (10 a second, then 12.5, ...) until it covers them
    # all, about 11 periods later; a sampler that never raised its rates would stay below.
    periods = 0
    while sampler.rates and periods < 40:
        periods += 1
        for i in range(int(PERIOD_S * 100)):
            clock.now = PERIOD_S * (1 + periods) + i / 100
            if sampler.draw("llm"):
                sampler.began()
                sampler.finished()
            if i % 25 == 0 and sampler.draw("fallback"):
                sampler.began()
                sampler.finished()
    assert 10 <= periods <= 12
    assert sampler.rates == {}


def test_a_sampled_window_weighs_each_score_by_the_answers_it_stands_for() -> None:
    """Scores of a quiet period (every answer drawn) and of a busy one (one in ten) in one
    window: the mean is over the answers, not over the scores."""
    assert weighted_mean([(80.0, 1.0)] * 10 + [(40.0, 10.0)] * 2) == pytest.approx(
        (80 * 10 + 40 * 20) / 30
    )
    tracker = QualityTracker(encode_nothing, baseline=75, alert_threshold=5, min_turns=10)
    for _ in range(10):
        tracker.record("llm", 80.0)
    for _ in range(2):
        tracker.record("llm", 40.0, weight=10.0)
    assert tracker.snapshot()["llm"]["mean"] == 53.3  # unweighted, 73.3: "good"
    assert tracker.snapshot()["llm"]["status"] == "poor"


async def encode_nothing(texts: Sequence[str]) -> Vectors:
    raise AssertionError("not scored here")


def event(source: str, n: int) -> TurnEvent:
    return TurnEvent(
        call_id=f"c{n}", turn_id=1, flow="qa", state="answer", mode="enabled", source=source,
        question="When do you open?", answer="We open at nine.", latency_ms={}, detail={},
    )  # fmt: skip


async def test_under_load_a_rare_source_is_still_scored_and_the_rates_are_reported() -> None:
    """The encoder is held while a burst of answers arrives: the queue fills, and the next
    period scores a sample of the frequent source and every fallback, at rates set from what
    was scored while scoring was under way; the windows and the health figures say the rates."""
    release = asyncio.Event()

    async def encode(texts: Sequence[str]) -> Vectors:
        await release.wait()
        return np.ones((len(texts), 4), dtype=np.float32) / 2

    clock = Clock()
    tracker = QualityTracker(
        encode, baseline=60, alert_threshold=10, sampler=Sampler(seed=3, clock=clock)
    )
    for n in range(8):
        tracker.turn_served(event("fallback", n))
    for n in range(MAX_PENDING + 12):
        tracker.turn_served(event("llm", n))
    assert tracker.sampler.dropped == 20
    await asyncio.sleep(0)  # the scorings start, and wait for the encoder
    clock.now = 4.8  # the burst's scorings were under way until now
    release.set()
    assert await tracker.drain(5)
    clock.now = PERIOD_S
    llm_scored_before = tracker.scored - 8
    for n in range(200):
        tracker.turn_served(event("llm", n))
        if n % 20 == 0:
            tracker.turn_served(event("fallback", n))
        await asyncio.sleep(0)  # scoring keeps up in this period
    assert await tracker.drain(5)
    # MAX_PENDING scorings in 4.8 s; 28 llm and 1.6 fallback answers a second: fallbacks are
    # met in full, llm gets the rest.
    capacity = MAX_PENDING / 4.8
    llm_rate = (capacity - 1.6) / ((MAX_PENDING + 12) / PERIOD_S)
    assert tracker.sampler.rate("fallback") == 1.0
    assert tracker.sampler.rate("llm") == pytest.approx(llm_rate)
    snapshot = tracker.snapshot()
    assert snapshot["fallback"]["scored"] == 8 + 10
    assert snapshot["llm"]["sample_rate"] == round(llm_rate, 4)
    llm_scored = tracker.scored - 18 - llm_scored_before
    assert 0.75 * llm_rate * 200 < llm_scored < 1.25 * llm_rate * 200
    health = tracker.sampler.snapshot()
    assert health["dropped"] == 20 and health["sampled_out"] > 0
    assert health["sample_rates"] == {"fallback": 1.0, "llm": round(llm_rate, 4)}
