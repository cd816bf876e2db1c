"""The latency SLO, beside the quality one: how long the caller waits for the first word, per
source (quick, cache, llm, fallback, flow), in consecutive turns. The rollout guide's numbers are
the defaults: an alert when a source's first word is over 2.5 s for 5 turns in a row; a rollback
of the fast path when turns in enabled mode are over 3 s for 10 in a row (the known path is
the safer one while nobody knows why). Each streak is told once, as a `[LATENCY_ALERT]` line and
to the listeners (metrics, the automatic rollback), and its end as `[LATENCY_RECOVERED]`."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from typing import Literal

from voice_agent.listeners import Listeners
from voice_agent.telemetry.event import TurnEvent

log = logging.getLogger("voice_agent.telemetry")

Kind = Literal["alert", "rollback"]


@dataclass(frozen=True, slots=True)
class LatencyAlert:
    source: str
    kind: Kind  # alert: over the alert limit; rollback: enabled-mode turns over the rollback one
    limit_ms: float
    turns: int  # consecutive turns over the limit
    last_ms: float


@dataclass(frozen=True, slots=True)
class LatencyLimits:
    alert_ms: float = 2500
    alert_turns: int = 5
    rollback_ms: float = 3000
    rollback_turns: int = 10


class LatencySLO:
    def __init__(self, limits: LatencyLimits) -> None:
        self.limits = limits
        self._over: Counter[str] = Counter()  # per source: turns in a row over alert_ms
        self._slow_enabled = 0  # enabled-mode turns in a row over rollback_ms, any source
        self.alerting: set[str] = set()
        self.listeners: Listeners[[LatencyAlert]] = Listeners("latency alert")

    def turn_served(self, event: TurnEvent) -> None:
        first = event.latency_ms.get("first_token")
        if first is None or first < 0 or event.shadow_answer:
            return
        self._watch_source(event.source, first)
        if event.mode == "enabled":
            self._watch_enabled(event.source, first)

    def _watch_source(self, source: str, first: float) -> None:
        limits = self.limits
        if first <= limits.alert_ms:
            self._over[source] = 0
            if source in self.alerting:
                self.alerting.discard(source)
                log.warning("[LATENCY_RECOVERED] source=%s first_word_ms=%.0f", source, first)
            return
        self._over[source] += 1
        if self._over[source] == limits.alert_turns:
            self.alerting.add(source)
            self._tell(LatencyAlert(source, "alert", limits.alert_ms, limits.alert_turns, first))

    def _watch_enabled(self, source: str, first: float) -> None:
        limits = self.limits
        self._slow_enabled = self._slow_enabled + 1 if first > limits.rollback_ms else 0
        if self._slow_enabled == limits.rollback_turns:
            turns = limits.rollback_turns
            self._tell(LatencyAlert(source, "rollback", limits.rollback_ms, turns, first))

    def _tell(self, alert: LatencyAlert) -> None:
        log.warning(
            "[LATENCY_ALERT] kind=%s source=%s first_word_ms=%.0f over=%.0f for %d turns in a row",
            alert.kind, alert.source, alert.last_ms, alert.limit_ms, alert.turns,
        )  # fmt: skip
        self.listeners.notify(alert)
