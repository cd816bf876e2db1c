"""The telemetry file: JSON lines of every turn, quality score and shadow comparison, for
`voice-agent report`, `voice-agent sql` (sql.py) and for loading elsewhere. Each line has a
`type`: `turn`, `quality` or `shadow`, and the call id and turn id that join them; a `quality`
line also has the source's quality status and window mean once its score was counted. Written
as `json_lines.JsonLines`: a full disk drops lines, with one warning a minute, and never a
turn."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from voice_agent.telemetry.event import TurnEvent
from voice_agent.telemetry.json_lines import JsonLines
from voice_agent.telemetry.log import turn_record

WindowOf = Callable[[str], tuple[str, float | None]]  # a source → its status, window mean


class TelemetryFile:
    def __init__(
        self,
        path: Path,
        clock: Callable[[], float] = time.monotonic,
        window_of: WindowOf | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = path
        self._lines = JsonLines(path, clock)
        self._window_of = window_of
        self._wall_clock = wall_clock

    def _write(self, record: dict[str, Any]) -> None:
        self._lines.write(record)

    def turn_served(self, event: TurnEvent) -> None:
        self._write({"type": "turn", **turn_record(event)})

    def quality_scored(self, event: TurnEvent, score: float, parts: dict[str, float]) -> None:
        record: dict[str, Any] = {
            "type": "quality",
            "call": event.call_id,
            "turn": event.turn_id,
            "source": event.source,
            "state": event.state,
            "mode": event.mode,
            "at": round(self._wall_clock(), 3),  # when scored, shortly after the turn's `at`
            "score": score,
            "parts": parts,
            "would_be": event.shadow_answer,
        }
        if self._window_of is not None:
            # The source's quality status once this score joined its window, as alerts see it.
            record["status"], record["window_mean"] = self._window_of(event.source)
        self._write(record)

    def shadow_compared(self, record: dict[str, Any]) -> None:
        self._write({"type": "shadow", **record})

    def close(self) -> None:
        self._lines.close()
