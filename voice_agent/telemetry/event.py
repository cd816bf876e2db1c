"""Turn telemetry: one event per finished turn, handed to every observer. Observers measure
and export; they never change what a call does, and a failing observer never fails a turn.

The one verb is `turn_served`. Trackers (latency_tracker.py), the log lines (telemetry_log.py)
and, later, exporters subscribe to it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from voice_agent.redaction import redact, redact_all
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
    # Each timed stage's start and end in ms from the caller's words (TurnRecord.spans_ms).
    spans_ms: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    at: float = field(default_factory=time.time)


class TurnObserver(Protocol):
    def turn_served(self, event: TurnEvent) -> None: ...


def written_down(event: TurnEvent, transcripts: bool) -> TurnEvent:
    """The event as exporters may write it: the caller's data redacted in every text, or, with
    transcripts off, no question, answer, retrieved text or would-be answer at all."""
    would_be = event.would_be
    if not transcripts:
        if would_be is not None:
            would_be = replace(would_be, answer="", detail={})
        return replace(event, question=None, answer="", detail={}, context=(), would_be=would_be)
    if would_be is not None:
        would_be = replace(
            would_be, answer=redact(would_be.answer), detail=redact_all(would_be.detail)
        )
    return replace(
        event,
        question=redact(event.question) if event.question is not None else None,
        answer=redact(event.answer),
        detail=redact_all(event.detail),
        context=tuple(redact(text) for text in event.context),
        would_be=would_be,
    )


class Telemetry:
    """Hands each finished turn to the observers as it was (the trackers, which score and
    compare it) and to the exporters as it may be written down (logs, the telemetry file, the
    live stream): made once a turn by `written_down`."""

    def __init__(
        self,
        observers: Sequence[TurnObserver] = (),
        exporters: Sequence[TurnObserver] = (),
        transcripts: bool = True,
    ) -> None:
        self.observers = list(observers)
        self.exporters = list(exporters)
        self.transcripts = transcripts

    def turn_served(self, event: TurnEvent) -> None:
        self._tell(self.observers, event)
        if self.exporters:
            self._tell(self.exporters, written_down(event, self.transcripts))

    @staticmethod
    def _tell(observers: Sequence[TurnObserver], event: TurnEvent) -> None:
        for observer in observers:
            try:
                observer.turn_served(event)
            except Exception:  # boundary: telemetry must never take a turn down with it
                log.exception("telemetry observer %s failed", type(observer).__name__)
