"""What `/dashboard` draws, aggregated here so the page stays light however many calls run: a
second's turns become one point (turns, first-word p50/p95 per source, cache lookups and hits,
LLM calls saved, stage sums, the quality windows' means), the last `KEEP_S` seconds are kept,
and the page asks only for the points after the last one it has. Calls are kept as their
turns (the file's records, redacted as written down), quality scores and shadow comparisons
joined to them, for the calls heard from most recently (`dashboard_calls`, more than the
calls a process takes at once, so an active call is never the one dropped).

An exporter: it sees turns as they may be written down, and never changes what a call does.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np

from voice_agent.telemetry.event import TurnEvent
from voice_agent.telemetry.log import turn_record
from voice_agent.telemetry.report import Pricing, figures

KEEP_S = 900  # seconds of points: the longest window the page offers (15 minutes)
KEEP_CALLS = 1500  # calls kept, least recently heard dropped first (`dashboard_calls`)
KEEP_TURNS = 30  # a call's latest turns
KEEP_ALERTS = 50
KEEP_RECORDS = 3000  # turn, quality and shadow records for the live comparison
FAST = ("quick", "cache")
STAGES = ("embedding", "quick", "cache", "retrieval", "llm_first_token")
COMPARISON_EVERY_S = 2.0  # the live comparison is remade at most this often


@dataclass(slots=True)
class Second:
    """One second's turns, as they finished."""

    at: int
    first_ms: dict[str, list[float]] = field(default_factory=dict)
    cache_lookups: int = 0
    cache_hits: int = 0
    stage_sums: dict[str, float] = field(default_factory=dict)
    stage_counts: dict[str, int] = field(default_factory=dict)
    quality: dict[str, float] = field(default_factory=dict)  # window means, when closed

    def add(self, source: str, latency_ms: dict[str, float], cache: str | None) -> None:
        first = latency_ms.get("first_token")
        if first is not None:
            self.first_ms.setdefault(source, []).append(first)
        if cache is not None:
            self.cache_lookups += 1
            self.cache_hits += cache == "hit"
        for stage in STAGES:
            if stage in latency_ms:
                self.stage_sums[stage] = self.stage_sums.get(stage, 0.0) + latency_ms[stage]
                self.stage_counts[stage] = self.stage_counts.get(stage, 0) + 1

    def point(self) -> dict[str, Any]:
        """The second as the page draws it."""
        turns = {s: len(v) for s, v in self.first_ms.items()}
        # "all" is the answers' first word, as the report counts it: the flow's own lines apart.
        every = [ms for s, values in self.first_ms.items() if s != "flow" for ms in values]
        p50 = {s: round(float(np.percentile(v, 50)), 1) for s, v in self.first_ms.items()}
        p95 = {s: round(float(np.percentile(v, 95)), 1) for s, v in self.first_ms.items()}
        if every:
            p50["all"] = round(float(np.percentile(every, 50)), 1)
            p95["all"] = round(float(np.percentile(every, 95)), 1)
        return {
            "t": self.at,
            "turns": turns,
            "p50": p50,
            "p95": p95,
            "cache": [self.cache_hits, self.cache_lookups],
            "saved": sum(n for s, n in turns.items() if s in FAST),
            "stages": {
                s: [round(self.stage_sums[s], 2), self.stage_counts[s]] for s in self.stage_sums
            },
            "quality": self.quality,
        }


@dataclass(slots=True)
class CallTrace:
    call_id: str
    flow: str
    first_at: float
    last_at: float
    mode: str
    turns: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=KEEP_TURNS))
    sources: dict[str, int] = field(default_factory=dict)

    def summary(self, active: bool) -> dict[str, Any]:
        return {
            "call_id": self.call_id,
            "flow": self.flow,
            "mode": self.mode,
            "first_at": round(self.first_at, 3),
            "last_at": round(self.last_at, 3),
            "turns": sum(self.sources.values()),
            "sources": dict(self.sources),
            "active": active,
        }


class LiveBoard:
    def __init__(
        self,
        quality_windows: Callable[[], dict[str, dict[str, object]]] = dict,
        clock: Callable[[], float] = time.time,
        keep_calls: int = KEEP_CALLS,
    ) -> None:
        self._quality_windows = quality_windows
        self._keep_calls = keep_calls
        self._clock = clock
        self._points: deque[dict[str, Any]] = deque(maxlen=KEEP_S)
        self._open: Second | None = None
        self._calls: OrderedDict[str, CallTrace] = OrderedDict()
        self.alerts: deque[dict[str, Any]] = deque(maxlen=KEEP_ALERTS)
        self.records: deque[dict[str, Any]] = deque(maxlen=KEEP_RECORDS)
        self._comparison: tuple[float, dict[str, Any]] | None = None

    # -- what it is told ---------------------------------------------------------------------

    def turn_served(self, event: TurnEvent) -> None:
        second = self._second()
        record = {"type": "turn", **turn_record(event)}
        second.add(event.source, dict(event.latency_ms), event.cache)
        self.records.append(record)
        trace = self._calls.get(event.call_id)
        if trace is None:
            trace = CallTrace(event.call_id, event.flow, event.at, event.at, event.mode)
            self._calls[event.call_id] = trace
            while len(self._calls) > self._keep_calls:
                self._calls.popitem(last=False)
        self._calls.move_to_end(event.call_id)
        trace.last_at, trace.mode = event.at, event.mode
        trace.sources[event.source] = trace.sources.get(event.source, 0) + 1
        trace.turns.append(record)

    def quality_scored(self, event: TurnEvent, score: float, parts: dict[str, float]) -> None:
        quality = {"score": score, "parts": parts, "would_be": event.shadow_answer}
        self.records.append({"type": "quality", "call": event.call_id, "turn": event.turn_id,
                             "source": event.source, "state": event.state, **quality})  # fmt: skip
        turn = self._turn(event.call_id, event.turn_id)
        if turn is not None:
            turn["would_be_quality" if event.shadow_answer else "quality"] = quality

    def shadow_compared(self, record: dict[str, Any]) -> None:
        self.records.append({"type": "shadow", **record})
        turn = self._turn(str(record.get("call")), record.get("turn"))
        if turn is not None:
            turn["shadow"] = record

    def alerted(self, kind: str, source: str, text: str) -> None:
        self.alerts.append({"at": round(self._clock(), 3), "kind": kind, "source": source,
                            "text": text})  # fmt: skip

    # -- what the page asks ------------------------------------------------------------------

    def points_after(self, after: float) -> list[dict[str, Any]]:
        """The closed seconds after `after` (a point's `t`), oldest first."""
        self._second()  # closes the second that ended, even with no turn since
        return [p for p in self._points if p["t"] > after]

    def calls(self, active_ids: set[str], limit: int) -> dict[str, Any]:
        """The active calls (newest first, up to `limit`) and the recent ones that ended."""
        active: list[dict[str, Any]] = []
        recent: list[dict[str, Any]] = []
        for trace in reversed(self._calls.values()):
            if trace.call_id in active_ids:
                if len(active) < limit:
                    active.append(trace.summary(True))
            elif len(recent) < limit:
                recent.append(trace.summary(False))
        return {"active": active, "recent": recent, "active_count": len(active_ids)}

    def call(self, call_id: str) -> dict[str, Any] | None:
        trace = self._calls.get(call_id)
        if trace is None:
            return None
        return {**trace.summary(False), "turn_records": list(trace.turns)}

    async def comparison(self) -> dict[str, Any]:
        """`voice-agent report`'s figures over the recent records, made on a worker thread
        (a few milliseconds of Python that must not hold the calls' loop) at most every
        COMPARISON_EVERY_S: the page asks often, the figures move slowly."""
        now = self._clock()
        if self._comparison is None or now - self._comparison[0] >= COMPARISON_EVERY_S:
            rows = list(self.records)  # copied on the loop, where the deque changes
            made = await asyncio.to_thread(figures, rows, Pricing())
            self._comparison = (now, made)
        return self._comparison[1]

    # -- inside ------------------------------------------------------------------------------

    def _second(self) -> Second:
        now = int(self._clock())
        current = self._open
        if current is not None and current.at == now:
            return current
        if current is not None:
            windows = self._quality_windows()
            current.quality = {
                source: cast(float, window["mean"])
                for source, window in windows.items()
                if window.get("scored")
            }
            self._points.append(current.point())
        self._open = Second(now)
        return self._open

    def _turn(self, call_id: str, turn_id: object) -> dict[str, Any] | None:
        trace = self._calls.get(call_id)
        if trace is None:
            return None
        return next((turn for turn in reversed(trace.turns) if turn["turn"] == turn_id), None)
