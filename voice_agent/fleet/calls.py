"""Call counts across the fleet, for the per-key limit: every process writes its own counts
per API key to Redis (`{prefix}:calls:{node}`, expiring unless refreshed, so a process that
dies stops counting within `ttl_s`), and reads the others' every `every_s`. A new call is
checked against this process's exact count plus the others' as last read: at most `every_s`
old, so a burst spread over many processes can pass the limit by the calls that arrive in
that second. With Redis down, the others' counts are forgotten after `ttl_s` and each
process limits its own calls alone (logged)."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import Counter
from collections.abc import Callable, Mapping

from redis.asyncio import Redis
from redis.exceptions import RedisError
from redis.typing import EncodableT, FieldT

from voice_agent.tasks import TaskScope

log = logging.getLogger(__name__)


class FleetCalls:
    def __init__(
        self,
        url: str,
        counts: Callable[[], Mapping[str, int]],
        prefix: str = "voice-agent",
        timeout_s: float = 0.5,
        every_s: float = 1.0,
        ttl_s: float = 5.0,
    ) -> None:
        self.node = uuid.uuid4().hex[:12]
        self.others: Counter[str] = Counter()  # calls per key on the other processes
        self._counts = counts
        self._prefix = prefix
        self._every_s, self._ttl_s = every_s, ttl_s
        self._redis = Redis.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
        )
        self._tasks = TaskScope("fleet-calls")
        self._failing_since: float | None = None

    async def start(self) -> None:
        self._tasks.spawn(self._run(), name="counts")

    async def aclose(self) -> None:
        await self._tasks.cancel_all(1.0)
        try:
            await self._redis.delete(self._key(self.node))  # this process counts no more
        except (RedisError, OSError):
            pass
        await self._redis.aclose()

    def _key(self, node: str) -> str:
        return f"{self._prefix}:calls:{node}"

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                await self.exchange()
                if self._failing_since is not None:
                    log.info("[FLEET] call counts shared again")
                self._failing_since = None
            except (RedisError, OSError) as exc:
                if self._failing_since is None:
                    self._failing_since = loop.time()
                    log.warning("[FLEET] call counts not shared (%s); limiting alone", exc)
                elif loop.time() - self._failing_since >= self._ttl_s:
                    self.others.clear()  # too old to trust
            await asyncio.sleep(self._every_s)

    async def exchange(self) -> None:
        """Write this process's counts, read the others'."""
        mine: dict[FieldT, EncodableT] = {k: n for k, n in self._counts().items() if n > 0}
        own = self._key(self.node)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(own)
            if mine:
                pipe.hset(own, mapping=mine)
            pipe.pexpire(own, int(self._ttl_s * 1000))
            await pipe.execute()
        others: Counter[str] = Counter()
        async for key in self._redis.scan_iter(match=self._key("*"), count=100):
            name = key.decode() if isinstance(key, bytes) else str(key)
            if name == own:
                continue
            counts = await self._redis.hgetall(name)
            for api_key, count in counts.items():
                others[api_key.decode() if isinstance(api_key, bytes) else api_key] += int(count)
        self.others = others
