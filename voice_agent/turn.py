"""The per-turn record: every stage appends its timing here, on the hot path."""

from __future__ import annotations

import time
from dataclasses import dataclass, field


def now() -> float:
    return time.perf_counter()


@dataclass(slots=True)
class TurnRecord:
    """Timings of one caller turn, in milliseconds from the moment its frame was received."""

    call_id: str
    turn_id: int
    received_at: float = field(default_factory=now)
    stages_ms: dict[str, float] = field(default_factory=dict)
    # Where each timed stage began and ended, in ms from the start: what traces are drawn from.
    spans_ms: dict[str, tuple[float, float]] = field(default_factory=dict)
    first_token_ms: float | None = None

    def since_start_ms(self) -> float:
        return (now() - self.received_at) * 1000.0

    def mark(self, stage: str) -> None:
        """Record that `stage` happened now."""
        self.stages_ms[stage] = round(self.since_start_ms(), 3)

    def add_duration(self, stage: str, started_at: float) -> None:
        """Record how long `stage` took, from `started_at` (a `now()` reading) until now."""
        ended_ms = self.since_start_ms()
        began_ms = (started_at - self.received_at) * 1000.0
        self.stages_ms[stage] = round(ended_ms - began_ms, 3)
        self.spans_ms[stage] = (round(began_ms, 3), round(ended_ms, 3))

    def first_token_sent(self) -> None:
        if self.first_token_ms is None:
            self.first_token_ms = round(self.since_start_ms(), 3)

    def latency_ms(self) -> dict[str, float]:
        out: dict[str, float] = {
            "first_token": self.first_token_ms if self.first_token_ms is not None else -1.0,
            "total": round(self.since_start_ms(), 3),
        }
        out.update(self.stages_ms)
        return out
