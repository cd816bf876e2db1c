"""The telemetry file: JSON lines of every turn, quality score and shadow comparison, for
`voice-agent report` and for loading elsewhere. Each line has a `type`: `turn`, `quality` or
`shadow`, and the call id and turn id that join them."""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from voice_agent.telemetry.event import TurnEvent
from voice_agent.telemetry.log import turn_record

log = logging.getLogger(__name__)


class TelemetryFile:
    """Appends one line per record with one unbuffered write, so nothing is held in memory
    when the disk is full or slow to take it: a record that cannot be written is dropped and
    counted, with one warning a minute at most, and the call that made it never knows."""

    WARN_EVERY_S = 60.0

    def __init__(self, path: Path, clock: Callable[[], float] = time.monotonic) -> None:
        self.path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._clock = clock
        self._warned_at: float | None = None
        self.dropped = 0  # records not written since the last warning

    def _write(self, record: dict[str, Any]) -> None:
        line = (json.dumps(record, separators=(",", ":"), default=str) + "\n").encode()
        try:
            while line:
                line = line[os.write(self._fd, line) :]
        except OSError as exc:
            self.dropped += 1
            now = self._clock()
            if self._warned_at is None or now - self._warned_at >= self.WARN_EVERY_S:
                log.warning(
                    "telemetry file %s: %s; %d record(s) dropped (warned at most once a minute)",
                    self.path, exc.strerror or exc, self.dropped,
                )  # fmt: skip
                self._warned_at, self.dropped = now, 0

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
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
