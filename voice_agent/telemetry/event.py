"""Turn telemetry: one event per finished turn, handed to every observer. Observers measure
and export; they never change what a call does, and a failing observer never fails a turn.

The one verb is `turn_served`. Trackers (latency_tracker.py), the log lines (telemetry_log.py)
and, later, exporters subscribe to it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from voice_agent.types import CacheVerdict, WouldBe

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TurnEvent:
    call_id: str
    turn_id: int
    flow: str
    state: str
    mode: str
    source: str  # quick, cache, llm, fallback, flow
    question: str | None  # the caller's words, when the turn answered some
    answer: str
    latency_ms: Mapping[str, float]
    detail: Mapping[str, Any]  # for people reading the turn (logs, the done frame); not for code
    context: Sequence[str] = ()  # retrieved text an LLM answer was made from
    would_be: WouldBe | None = None  # shadow mode: what the fast tiers would have answered
    cache: CacheVerdict | None = None  # the cache tier's verdict, when it looked
    intent_score: float | None = None  # a template's: how sure the quick tier was of the intent
    fallback_reason: str | None = None  # why the fallback line was spoken
    # This event stands for a fast tier's shadow answer (judged by quality, never spoken).
    shadow_answer: bool = False
    at: float = field(default_factory=time.time)


def cache_result(event: TurnEvent) -> CacheVerdict | None:
    """ "hit" or "miss" for a turn the cache tier saw, else None."""
    return event.cache


class TurnObserver(Protocol):
    def turn_served(self, event: TurnEvent) -> None: ...


class Telemetry:
    def __init__(self, observers: Sequence[TurnObserver] = ()) -> None:
        self.observers = list(observers)

    def turn_served(self, event: TurnEvent) -> None:
        for observer in self.observers:
            try:
                observer.turn_served(event)
            except Exception:  # boundary: telemetry must never take a turn down with it
                log.exception("telemetry observer %s failed", type(observer).__name__)
