"""Automatic rollback: an observer of the quality tracker's alerts that, when the fast path's
answers turn poor in enabled mode, switches the fleet's flags to shadow (the LLM path serves)
until an engineer switches back. The audit log says why."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from voice_agent.flags import FlagsPatch, FlagStore
from voice_agent.fleet.flags import FleetFlags
from voice_agent.telemetry.quality import QualityAlert, QualityTracker

log = logging.getLogger(__name__)


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
        if self.flags.current.mode != "enabled":
            return
        why = (
            f"auto-rollback: {alert.source} answers poor (mean {alert.mean} over "
            f"{alert.window} turns, baseline {self.quality.baseline})"
        )
        if self.fleet is not None:
            self.fleet.change_now(FlagsPatch(mode="shadow"), who=why)
        else:
            self.flags.change(FlagsPatch(mode="shadow"), who=why, must_record=False)
        self.quality.reset(alert.source)
        log.warning("[QUALITY_ALERT] switched to shadow: %s", why)
