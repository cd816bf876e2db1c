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
from voice_agent.telemetry.quality import MAX_PENDING, QualityTracker
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
        sampler.finished()
    assert sampler.rates == {} and sampler.sampled_out == 0


def test_a_full_period_sets_rates_to_the_capacity_seen_and_they_recover_when_load_goes() -> None:
    clock = Clock()
    sampler = Sampler(seed=7, clock=clock)
    # One period: 100 llm answers and 4 fallbacks a second; 10 scorings a second finish and
    # the queue is full.
    for i in range(int(PERIOD_S * 100)):
        clock.now = i / 100
        sampler.draw("llm")
        if i % 25 == 0:
            sampler.draw("fallback")
        if i % 10 == 0:
            sampler.finished()
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
    assert sampler.rate("fallback") == 1.0 and drawn["fallback"] == 20
    assert sampler.rate("llm") == pytest.approx(6 / 100, rel=0.05)
    # A uniform sample: about the rate's share of the period's answers, early and late alike.
    assert 15 <= drawn["llm"] <= 45
    # Load gone: no drawn answer turned away, so the capacity is assumed a quarter higher each
    # period until every answer is scored again.
    periods = 0
    while sampler.rates and periods < 40:
        periods += 1
        for i in range(10):
            clock.now = PERIOD_S * (1 + periods) + i * PERIOD_S / 10
            if sampler.draw("llm"):
                sampler.finished()
    assert sampler.rates == {} and periods < 40


def event(source: str, n: int) -> TurnEvent:
    return TurnEvent(
        call_id=f"c{n}", turn_id=1, flow="qa", state="answer", mode="enabled", source=source,
        question="When do you open?", answer="We open at nine.", latency_ms={}, detail={},
    )  # fmt: skip


async def test_under_load_a_rare_source_is_still_scored_and_the_rates_are_reported() -> None:
    """The encoder is held while a burst of answers arrives: the queue fills, the next period
    scores a sample of the frequent source and every fallback, and the windows say the rates."""
    release = asyncio.Event()

    async def encode(texts: Sequence[str]) -> Vectors:
        await release.wait()
        return np.ones((len(texts), 4), dtype=np.float32) / 2

    clock = Clock()
    tracker = QualityTracker(
        encode, baseline=60, alert_threshold=10, sampler=Sampler(seed=3, clock=clock)
    )
    for n in range(MAX_PENDING + 20):
        tracker.turn_served(event("llm", n))
    assert tracker.sampler.dropped == 20
    release.set()
    assert await tracker.drain(5)
    clock.now = PERIOD_S  # the period ends: 32 scorings finished in 5 s, and it was full
    served = {"llm": 0, "fallback": 0}
    for n in range(200):
        tracker.turn_served(event("llm", n))
        served["llm"] += 1
        if n % 20 == 0:
            tracker.turn_served(event("fallback", n))
            served["fallback"] += 1
        await asyncio.sleep(0)  # scoring keeps up in this period
    assert await tracker.drain(5)
    # 6.4 scorings a second for 10.4 llm answers a second; fallbacks were not seen in the full
    # period, so they are scored in full.
    assert tracker.sampler.rate("llm") == pytest.approx(6.4 / 10.4)
    assert tracker.sampler.rate("fallback") == 1.0
    snapshot = tracker.snapshot()
    assert snapshot["fallback"]["scored"] == served["fallback"]
    assert snapshot["llm"]["sample_rate"] == round(6.4 / 10.4, 4)
    assert 0.45 * served["llm"] < tracker.scored - MAX_PENDING - served["fallback"] < 0.8 * 200
    health = tracker.sampler.snapshot()
    assert health["dropped"] == 20 and health["sampled_out"] == tracker.skipped - 20
    assert health["sample_rates"] == {"llm": round(6.4 / 10.4, 4)}
