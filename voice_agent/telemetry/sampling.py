"""Which answers the quality tracker scores: every one while the machine keeps up; past that, a
uniform random sample of each response source, sized to what the encoder has left.

Scoring "whatever fits in the queue" would not be a sample. The answers that arrive while the
queue is full are the ones never scored, and those are the answers of the worst moments: a
burst of fallbacks comes exactly when the service is overloaded. So each answer of a source is
scored with the same probability, its source's rate, for a period; at the end of each period
the rates are set from what the period saw: how many answers each source served, how many
scorings finished in the time some were under way (the tracker's capacity), and whether a
drawn answer found the queue full. Only then is the capacity the limit, shared max-min fair
between the sources: a rare source (fallbacks) is scored in full before the frequent ones share
the rest, so no source's window goes silent.
When no drawn answer was turned away in a period, the capacity is assumed a quarter higher
than what was used, until every rate is back at 1.

Each score in a source's window counts for 1 / the rate it was drawn at (quality.py), so the
window's mean estimates the mean of all the answers it spans, busy periods and quiet ones; at a
rate of 0.1 a window of 50 scores spans about 500 answers, so an alert comes later in time but
is not biased. The rates are in `/health` (`quality_scoring`) and in each `[QUALITY_ALERT]` line.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable, Mapping

PERIOD_S = 5.0  # how long a set of rates holds
GROWTH = 1.25  # the capacity assumed next period when the last one never ran out of room
MIN_PER_PERIOD = 1.0  # scorings a period assumed possible however starved the encoder


def fair_rates(capacity: float, demand: Mapping[str, float]) -> dict[str, float]:
    """Each source's rate (0..1) when `capacity` scorings a second are shared max-min fair
    between sources serving `demand` answers a second: the smallest demands are met in full,
    the others get equal shares of what is left."""
    rates: dict[str, float] = {}
    remaining = capacity
    waiting = sorted((rate, source) for source, rate in demand.items() if rate > 0)
    while waiting:
        share = remaining / len(waiting)
        rate, source = waiting[0]
        if rate > share:
            rates.update((s, min(1.0, share / r)) for r, s in waiting)
            break
        rates[source] = 1.0
        remaining -= rate
        waiting.pop(0)
    return rates


class Sampler:
    def __init__(
        self,
        period_s: float = PERIOD_S,
        seed: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._period_s = period_s
        self._rng = random.Random(seed)
        self._clock = clock
        self._started = clock()
        self._arrived: Counter[str] = Counter()
        self._finished = 0
        self._pending = 0  # scorings under way
        self._busy_s = 0.0  # time this period with a scoring under way
        self._busy_since: float | None = None
        self._full = False  # a drawn answer found no room this period
        self.capacity: float | None = None  # scorings a second; None: no limit seen
        self.rates: dict[str, float] = {}  # a source not here is scored in full
        self.sampled_out = 0  # answers not drawn, since start
        self.dropped = 0  # answers drawn that found no room, since start

    def rate(self, source: str) -> float:
        return self.rates.get(source, 1.0)

    def draw(self, source: str) -> bool:
        """Whether this answer of `source` is to be scored."""
        self._roll()
        self._arrived[source] += 1
        if self._rng.random() < self.rate(source):
            return True
        self.sampled_out += 1
        return False

    def no_room(self) -> None:
        """A drawn answer found the scoring queue full: the rates were too high."""
        self.dropped += 1
        self._full = True

    def began(self) -> None:
        """A drawn answer's scoring started."""
        if self._pending == 0:
            self._busy_since = self._clock()
        self._pending += 1

    def finished(self) -> None:
        """A scoring ended (scored or failed)."""
        self._finished += 1
        self._pending -= 1
        if self._pending == 0 and self._busy_since is not None:
            self._busy_s += self._clock() - self._busy_since
            self._busy_since = None

    def _roll(self) -> None:
        now = self._clock()
        elapsed = now - self._started
        if elapsed < self._period_s:
            return
        busy = self._busy_s
        if self._busy_since is not None:
            busy += now - self._busy_since
            self._busy_since = now
        # Scorings a second while there was scoring to do: what the encoder gave them, not
        # lowered by the quiet part of the period.
        used = self._finished / busy if busy > 0 else 0.0
        if self._full:
            self.capacity = max(used, MIN_PER_PERIOD / self._period_s)
        elif self.capacity is not None:
            self.capacity = max(self.capacity, used) * GROWTH
        demand = {source: n / elapsed for source, n in self._arrived.items()}
        if self.capacity is not None and self.capacity >= sum(demand.values()):
            self.capacity = None  # room for every answer again
        self.rates = {} if self.capacity is None else fair_rates(self.capacity, demand)
        self._started = now
        self._arrived.clear()
        self._finished = 0
        self._busy_s = 0.0
        self._full = False

    def snapshot(self) -> dict[str, object]:
        return {
            "sampled_out": self.sampled_out,
            "dropped": self.dropped,
            "sample_rates": {source: round(rate, 4) for source, rate in sorted(self.rates.items())},
        }
