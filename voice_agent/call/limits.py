"""A call's own bounds that the session keeps: how many caller turns it starts a minute."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable


class TurnRate:
    """At most `per_minute` turns in any sixty seconds (0: no limit). A caller, or a bot on
    the line, talking faster than that has the turns past it refused, so one call cannot keep
    the model busy for everyone."""

    WINDOW_S = 60.0

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self._clock = clock
        self._started: deque[float] = deque()

    def allow(self) -> bool:
        """Whether a turn may start now; one that may is counted."""
        if self.per_minute <= 0:
            return True
        now = self._clock()
        while self._started and now - self._started[0] >= self.WINDOW_S:
            self._started.popleft()
        if len(self._started) >= self.per_minute:
            return False
        self._started.append(now)
        return True
