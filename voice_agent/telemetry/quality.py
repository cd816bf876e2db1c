"""The quality tracker: every answer the tiers served, and in shadow mode the answer the fast
tiers would have served, is scored (quality.py) in the background,
logged as a `[QUALITY]` line, and rolled up per response source over a sliding window.

A source's status is `good` while its window's mean stays within `alert_threshold` points of
`baseline`, `degraded` within twice that, `poor` below. Each step down logs
`[QUALITY_ALERT]` and tells the listeners (automatic rollback acts on `poor`). Scoring needs the
answer's embedding, so it runs off the turn, after the answer was sent; past what the machine
can score, each source's answers are scored as a uniform random sample (sampling.py), and what
is still waiting is bounded.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Literal

from voice_agent.listeners import Listeners
from voice_agent.quality.score import QualityScore, score_answer
from voice_agent.rag.encoder import Vectors
from voice_agent.redaction import redact
from voice_agent.tasks import TaskScope
from voice_agent.telemetry.event import TurnEvent
from voice_agent.telemetry.sampling import Sampler

log = logging.getLogger("voice_agent.telemetry")

Status = Literal["good", "degraded", "poor"]
_RANK: dict[Status, int] = {"good": 0, "degraded": 1, "poor": 2}
SCORED_SOURCES = ("quick", "cache", "llm", "fallback")
MAX_PENDING = 128  # scorings under way or waiting; a burst of answers waits here
SKIP_WARNING_EVERY_S = 10.0  # one warning per period while scoring sheds load
EncodeMany = Callable[[Sequence[str]], Awaitable[Vectors]]
Weighted = tuple[float, float]  # a score and how many answers it stands for


def weighted_mean(window: Iterable[Weighted]) -> float:
    """A sampled window's mean over the answers it stands for: a score drawn in a busy period
    counts for the answers that were not drawn beside it."""
    total = weight = 0.0
    for score, w in window:
        total += score * w
        weight += w
    return total / weight


async def score_texts(
    encode: EncodeMany,
    question: str,
    answer: str,
    passages: Sequence[str] | None,
    outcome: str = "answer",
    intent_score: float | None = None,
) -> QualityScore:
    """Embed the texts in one batch, then score (quality.py); `passages` None: no grounding;
    `intent_score` for a template answer."""
    vectors = await encode([question, answer, *(passages or ())])
    grounded = list(zip(passages, vectors[2:], strict=True)) if passages is not None else None
    return score_answer(
        answer, vectors[0], vectors[1], grounded, outcome, intent_score, question=question
    )


@dataclass(frozen=True, slots=True)
class QualityAlert:
    source: str
    status: Status
    mean: float
    window: int


class QualityTracker:
    def __init__(
        self,
        encode: EncodeMany,
        baseline: float,
        alert_threshold: float,
        window: int = 50,
        min_turns: int = 10,
        sampler: Sampler | None = None,
    ) -> None:
        self.baseline = baseline
        self.alert_threshold = alert_threshold
        self._encode = encode
        self._window = window
        self._min_turns = min_turns  # fewer scores than this say nothing yet
        # Windows of (score, weight): a score drawn at a rate of 0.1 stands for 10 answers.
        self._scores: dict[str, deque[Weighted]] = {}
        self._by_state: dict[tuple[str, str], deque[Weighted]] = {}  # (source, state): shown
        self._status: dict[str, Status] = {}
        self._judged: dict[str, tuple[Status, float]] = {}  # the latest score's: window_of
        self._tasks = TaskScope("quality")
        self.listeners: Listeners[[QualityAlert]] = Listeners("quality alert")
        # Exporters: (the turn, its score, the score's parts).
        self.score_listeners: Listeners[[TurnEvent, float, dict[str, float]]] = Listeners(
            "quality score"
        )
        self.sampler = sampler or Sampler()
        self.scored = 0  # answers scored since start
        self._warned_at = -SKIP_WARNING_EVERY_S

    def turn_served(self, event: TurnEvent) -> None:
        if event.source not in SCORED_SOURCES or not event.question or not event.answer:
            return
        scored = [event]
        if event.would_be is not None:  # shadow: the fast tier's answer is judged too
            would_be = event.would_be
            scored.append(
                replace(
                    event,
                    source=would_be.source,
                    answer=would_be.answer,
                    context=(),
                    detail=would_be.detail,
                    would_be=None,
                    cache=None,
                    intent_score=would_be.intent_score,
                    fallback_reason=None,
                    shadow_answer=True,
                )
            )
        for item in scored:
            if not self.sampler.draw(item.source):
                self._warn()
                continue
            if self._tasks.running >= MAX_PENDING:
                self.sampler.no_room()
                self._warn()
                continue
            weight = 1 / self.sampler.rate(item.source)
            self._tasks.spawn(
                self._score(item, weight), name=f"score-{item.call_id}-{item.turn_id}"
            )

    @property
    def skipped(self) -> int:
        """Answers not scored since start: sampled out, or drawn when the queue was full."""
        return self.sampler.sampled_out + self.sampler.dropped

    def _warn(self) -> None:
        if time.monotonic() - self._warned_at < SKIP_WARNING_EVERY_S:
            return
        self._warned_at = time.monotonic()
        rates = ", ".join(f"{s} {r:.2f}" for s, r in sorted(self.sampler.rates.items()))
        log.warning(
            "quality scoring at capacity (calls' embeddings go first): scoring a sample of "
            "each source (%s); %d answers not scored so far", rates or "rates not set yet",
            self.skipped,
        )  # fmt: skip

    async def _score(self, event: TurnEvent, weight: float) -> None:
        self.sampler.began()
        try:
            await self._scored(event, weight)
        finally:
            self.sampler.finished()

    async def _scored(self, event: TurnEvent, weight: float) -> None:
        assert event.question is not None
        context = list(event.context) if event.source == "llm" else []
        reason = event.fallback_reason or ""
        outcome = "timeout" if reason.startswith("timeout") else "fallback"
        result = await score_texts(
            self._encode,
            event.question,
            event.answer,
            context or None,
            outcome if event.source == "fallback" else "answer",
            event.intent_score if event.source == "quick" else None,
        )
        parts = " ".join(f"{k}={v}" for k, v in result.parts.items())
        notes = f" notes={redact(';'.join(result.notes))}" if result.notes else ""
        if event.shadow_answer:
            notes += " would_be=true"
        log.info(
            "[QUALITY] call=%s turn=%s source=%s state=%s mode=%s score=%s %s%s",
            event.call_id,
            event.turn_id,
            event.source,
            event.state,
            event.mode,
            result.score,
            parts,
            notes,
        )
        by_state = self._by_state.get((event.source, event.state))
        if by_state is None:
            by_state = self._by_state[(event.source, event.state)] = deque(maxlen=self._window)
        by_state.append((result.score, weight))
        self.scored += 1
        self.record(event.source, result.score, weight)
        # After the window took the score: an exporter can write the status it left.
        self.score_listeners.notify(event, result.score, result.parts)

    def record(self, source: str, score: float, weight: float = 1.0) -> None:
        """`weight`: how many answers the score stands for (1 / the rate it was drawn at)."""
        scores = self._scores.get(source)
        if scores is None:
            scores = self._scores[source] = deque(maxlen=self._window)
        scores.append((score, weight))
        mean = weighted_mean(scores)
        if len(scores) < self._min_turns:
            self._judged[source] = (self._status.get(source, "good"), round(mean, 1))
            return
        status = self._judge(mean)
        before = self._status.get(source, "good")
        self._status[source] = status
        self._judged[source] = (status, round(mean, 1))  # before a listener resets the window
        if _RANK[status] > _RANK[before]:  # each step down is told: degraded, then poor
            alert = QualityAlert(source, status, round(mean, 1), len(scores))
            log.warning(
                "[QUALITY_ALERT] source=%s status=%s mean=%s baseline=%s window=%d sample_rate=%s",
                source,
                status,
                alert.mean,
                self.baseline,
                len(scores),
                round(self.sampler.rate(source), 4),
            )
            self.listeners.notify(alert)

    def _judge(self, mean: float) -> Status:
        drop = self.baseline - mean
        if drop <= self.alert_threshold:
            return "good"
        return "degraded" if drop <= 2 * self.alert_threshold else "poor"

    def lines(self) -> dict[str, float]:
        """The means at which a window is judged (`_judge`): its baseline, and the lines below
        which it is degraded and poor, for charts to draw."""
        return {
            "baseline": self.baseline,
            "degraded": self.baseline - self.alert_threshold,
            "poor": self.baseline - 2 * self.alert_threshold,
        }

    def window_of(self, source: str) -> tuple[Status, float | None]:
        """A source's status and window mean as its latest score left them (None: no score
        yet), even if an alert's listener started the window afresh since."""
        return self._judged.get(source, ("good", None))

    def reset(self, source: str) -> None:
        """Start a source's window afresh (after a rollback, the old scores say nothing)."""
        self._scores.pop(source, None)
        self._status.pop(source, None)

    def snapshot(self) -> dict[str, dict[str, object]]:
        return {
            source: {
                "status": self._status.get(source, "good"),
                "mean": round(weighted_mean(scores), 1),
                "scored": len(scores),
                # The rate answers are drawn at now; the mean weighs each score by its own.
                "sample_rate": round(self.sampler.rate(source), 4),
            }
            for source, scores in sorted(self._scores.items())
        }

    def by_state(self) -> list[dict[str, object]]:
        """Mean score per (source, state), over the same window length."""
        return [
            {"source": source, "state": state, "mean": round(weighted_mean(v), 1), "scored": len(v)}
            for (source, state), v in sorted(self._by_state.items())
        ]

    async def drain(self, wait_s: float) -> bool:
        return await self._tasks.wait(wait_s)
