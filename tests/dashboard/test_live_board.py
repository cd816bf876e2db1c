"""The dashboard's aggregation, without a server: a second's turns become one point, the page
gets only the points after its last, calls are listed active first and open into their turns
with quality and shadow joined, and the comparison is the report's figures."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from voice_agent.telemetry.event import TurnEvent
from voice_agent.telemetry.live_board import KEEP_S, LiveBoard
from voice_agent.types import WouldBe


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def turn(call: str, n: int, source: str, first_ms: float, **fields: Any) -> TurnEvent:
    latency = {"first_token": first_ms, "total": first_ms + 5, "embedding": 4.0}
    if source == "llm":
        latency["llm_first_token"] = first_ms - 10
    return TurnEvent(
        call_id=call, turn_id=n, source=source, flow="qa", state="answer", mode="enabled",
        question=f"question {n}", answer=f"answer {n}", latency_ms=latency, detail={}, **fields,
    )  # fmt: skip


KEEP_CALLS = 40


def board_at(clock: Clock) -> LiveBoard:
    windows = {"quick": {"mean": 91.5, "scored": 12}, "llm": {"mean": 0.0, "scored": 0}}
    return LiveBoard(lambda: windows, clock, keep_calls=KEEP_CALLS)  # type: ignore[arg-type,return-value]


def test_a_seconds_turns_become_one_point_once_the_second_is_over() -> None:
    clock = Clock()
    board = board_at(clock)
    for n, ms in enumerate([5.0, 7.0, 9.0, 400.0]):
        source = "llm" if ms > 100 else "quick"
        board.turn_served(turn("a", n, source, ms, cache="miss" if n == 1 else None))
    assert board.points_after(0) == []  # the second is still open
    clock.now += 1
    [point] = board.points_after(0)
    assert point["t"] == 1000 and point["turns"] == {"quick": 3, "llm": 1}
    assert point["p95"]["quick"] == round(float(np.percentile([5, 7, 9], 95)), 1)
    assert point["p50"]["all"] == 8.0
    assert point["cache"] == [0, 1] and point["saved"] == 3
    assert point["stages"]["embedding"] == [16.0, 4] and point["stages"]["llm_first_token"][1] == 1
    assert point["quality"] == {"quick": 91.5}  # sources with no score yet are left out
    assert board.points_after(1000) == []  # the page asks only for what it lacks


def test_points_are_kept_for_the_longest_window_only() -> None:
    clock = Clock()
    board = board_at(clock)
    for _ in range(KEEP_S + 20):
        board.turn_served(turn("a", 1, "quick", 3.0))
        clock.now += 1
    points = board.points_after(0)
    assert len(points) == KEEP_S and points[-1]["t"] == int(clock.now) - 1


def test_calls_are_listed_active_first_and_the_least_recently_heard_dropped() -> None:
    clock = Clock()
    board = board_at(clock)
    board.turn_served(turn("long-call", 1, "quick", 3.0))
    for n in range(KEEP_CALLS + 5):
        board.turn_served(turn(f"call-{n}", 1, "quick", 3.0))
        if n % 10 == 0:  # the long call speaks now and then, so it is never the one dropped
            board.turn_served(turn("long-call", 2 + n, "quick", 3.0))
    assert board.call("long-call") is not None
    newest = f"call-{KEEP_CALLS + 4}"
    listed = board.calls({"call-2", "call-7", newest}, limit=10)
    assert listed["active_count"] == 3
    # call-2 was among the oldest heard, no longer kept: the count says it is there
    assert [c["call_id"] for c in listed["active"]] == [newest, "call-7"]
    assert all(c["active"] for c in listed["active"])
    assert (
        len(listed["recent"]) == 10 and listed["recent"][0]["call_id"] == f"call-{KEEP_CALLS + 3}"
    )
    assert board.call("call-5") is None and board.call("call-6") is not None


def test_a_call_opens_into_its_turns_with_quality_and_shadow_joined() -> None:
    board = board_at(Clock())
    served = turn("a", 1, "llm", 300.0, would_be=WouldBe("cache", "cached answer", 2.0))
    board.turn_served(served)
    board.quality_scored(served, 81.0, {"relevance": 0.7})
    board.shadow_compared({"call": "a", "turn": 1, "similarity": 0.93})
    [record] = board.call("a")["turn_records"]  # type: ignore[index]
    assert record["question"] == "question 1" and record["source"] == "llm"
    assert record["quality"] == {"score": 81.0, "parts": {"relevance": 0.7}, "would_be": False}
    assert record["shadow"]["similarity"] == 0.93
    assert record["would_be"]["source"] == "cache"


async def test_the_comparison_is_the_reports_figures_and_is_not_remade_every_ask() -> None:
    clock = Clock()
    board = board_at(clock)
    for n in range(10):
        board.turn_served(turn(f"c{n}", 1, "quick" if n < 6 else "llm", 5.0 if n < 6 else 300.0))
    first = await board.comparison()
    assert first["turns"] == 10 and first["fast_share"] == 0.6 and first["llm_calls_saved"] == 6
    assert first["served_by_source"]["llm"]["n"] == 4
    board.turn_served(turn("late", 1, "llm", 300.0))
    assert (await board.comparison())["turns"] == 10  # within COMPARISON_EVERY_S: kept
    clock.now += 3
    assert (await board.comparison())["turns"] == 11


def test_alerts_keep_their_time_and_text() -> None:
    clock = Clock(1234.5)
    board = board_at(clock)
    board.alerted("quality", "cache", "cache quality poor: mean 55.0")
    assert list(board.alerts) == [
        {
            "at": 1234.5,
            "kind": "quality",
            "source": "cache",
            "text": "cache quality poor: mean 55.0",
        }
    ]


async def test_the_comparison_counts_turns_written_down_without_words() -> None:
    """With transcripts off the turns reach the board with no question; they still count."""
    board = board_at(Clock())
    for n in range(4):
        board.turn_served(replace(turn(f"c{n}", 1, "cache", 2.0), question=None, answer=""))
    figures = await board.comparison()
    assert figures["turns"] == 4 and figures["llm_calls_saved"] == 4
