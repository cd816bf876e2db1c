"""JSON lines appended to a file (or written to standard output) with one unbuffered write
each, so nothing is held in memory when the disk is full or slow to take them: a line that
cannot be written is dropped and counted, with one warning a minute at most, and the turn that
made it never knows."""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

STDOUT = "stdout"


class JsonLines:
    WARN_EVERY_S = 60.0

    def __init__(self, target: Path | str, clock: Callable[[], float] = time.monotonic) -> None:
        self.target = str(target)
        self._owned = self.target != STDOUT
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT
        self._fd = os.open(self.target, flags, 0o644) if self._owned else 1
        self._clock = clock
        self._warned_at: float | None = None
        self.dropped = 0  # lines not written since the last warning

    def write(self, record: dict[str, Any]) -> None:
        line = (json.dumps(record, separators=(",", ":"), default=str) + "\n").encode()
        try:
            while line:
                line = line[os.write(self._fd, line) :]
        except OSError as exc:
            self.dropped += 1
            now = self._clock()
            if self._warned_at is None or now - self._warned_at >= self.WARN_EVERY_S:
                log.warning(
                    "%s: %s; %d record(s) dropped (warned at most once a minute)",
                    self.target, exc.strerror or exc, self.dropped,
                )  # fmt: skip
                self._warned_at, self.dropped = now, 0

    def close(self) -> None:
        if self._owned and self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
