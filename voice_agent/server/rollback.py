"""Automatic rollback: observers of the quality and latency alerts that switch the flags (the
fleet's, with Redis) to shadow, so the LLM path serves, until an engineer switches back: when
the fast path's answers turn poor in enabled mode, or when turns in enabled mode keep the
caller waiting past the latency SLO's rollback limit. The audit log says why."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from voice_agent.flags import FlagsPatch, FlagStore
from voice_agent.fleet.flags import FleetFlags
from voice_agent.telemetry.latency_slo import LatencyAlert
from voice_agent.telemetry.quality import QualityAlert, QualityTracker

log = logging.getLogger(__name__)


def roll_back(flags: FlagStore, fleet: FleetFlags | None, why: str) -> bool:
    """Switch enabled to shadow (on the whole fleet when it shares its flags); False when
    the mode was not enabled and nothing was done."""
    if flags.current.mode != "enabled":
        return False
    if fleet is not None:
        fleet.change_now(FlagsPatch(mode="shadow"), who=why)
    else:
        flags.change(FlagsPatch(mode="shadow"), who=why, must_record=False)
    return True


@dataclass(frozen=True, slots=True)
class AutoRollback:
    flags: FlagStore
    quality: QualityTracker
    fleet: FleetFlags | None = None  # with Redis: the whole fleet rolls back

    def __call__(self, alert: QualityAlert) -> None:
        """The fast path's answers got poor: serve the LLM path (shadow) until an engineer
        switches back. The audit log says why."""
        if alert.status != "poor" or alert.source not in ("quick", "cache"):
            return
        why = (
            f"auto-rollback: {alert.source} answers poor (mean {alert.mean} over "
            f"{alert.window} turns, baseline {self.quality.baseline})"
        )
        if roll_back(self.flags, self.fleet, why):
            self.quality.reset(alert.source)
            log.warning("[QUALITY_ALERT] switched to shadow: %s", why)


@dataclass(frozen=True, slots=True)
class LatencyRollback:
    flags: FlagStore
    fleet: FleetFlags | None = None

    def __call__(self, alert: LatencyAlert) -> None:
        if alert.kind != "rollback":
            return
        why = (
            f"auto-rollback: first word over {alert.limit_ms:.0f} ms for {alert.turns} "
            f"enabled-mode turns in a row (last {alert.last_ms:.0f} ms, {alert.source})"
        )
        if roll_back(self.flags, self.fleet, why):
            log.warning("[LATENCY_ALERT] switched to shadow: %s", why)
