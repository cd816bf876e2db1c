"""The telemetry file: JSON lines of every turn, quality score and shadow comparison, for
`voice-agent report` and for loading elsewhere. Each line has a `type`: `turn`, `quality` or
`shadow`, and the call id and turn id that join them."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from voice_agent.telemetry.event import TurnEvent
from voice_agent.telemetry.log import turn_record

log = logging.getLogger(__name__)


class TelemetryFile:
    def __init__(self, path: Path) -> None:
        self.path = path
        # Line-buffered appends: a line is on disk when the turn is, and nothing is held back.
        self._out = path.open("a", encoding="utf-8", buffering=1)

    def _write(self, record: dict[str, Any]) -> None:
        try:
            self._out.write(json.dumps(record, separators=(",", ":"), default=str) + "\n")
        except OSError as exc:
            log.warning("telemetry file %s: %s", self.path, exc)

    def turn_served(self, event: TurnEvent) -> None:
        self._write({"type": "turn", **turn_record(event)})

    def quality_scored(self, event: TurnEvent, score: float, parts: dict[str, float]) -> None:
        self._write(
            {
                "type": "quality",
                "call": event.call_id,
                "turn": event.turn_id,
                "source": event.source,
                "state": event.state,
                "mode": event.mode,
                "score": score,
                "parts": parts,
                "would_be": event.shadow_answer,
            }
        )

    def shadow_compared(self, record: dict[str, Any]) -> None:
        self._write({"type": "shadow", **record})

    def close(self) -> None:
        self._out.close()
