"""Fleet-wide flags: one versioned JSON document in Redis, `{prefix}:flags`, holds the mode,
rollout percent, tier switches and budgets for every process. A change is a compare-and-set on
the version (a Lua script: two processes changing at once cannot overwrite each other), then a
message on `{prefix}:flags:changed`; every process adopts a newer version from the message, or
from its own check every `check_s` (a message missed while it reconnected). The process that
makes a change writes the one audit line for it; an automatic rollback is applied here at once
and written to the fleet as soon as Redis takes it. With Redis down, a process keeps the last
flags it saw and says so (`status()`, shown in `/health`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import asdict
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from voice_agent.errors import FleetUnavailable
from voice_agent.flags import Flags, FlagsPatch, FlagStore
from voice_agent.tasks import TaskScope

log = logging.getLogger(__name__)

# KEYS: the document, the channel; ARGV: the version it must still be at, the new document.
SWAP = """
local current = redis.call('GET', KEYS[1])
local version = 0
if current then version = cjson.decode(current)['version'] end
if version ~= tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
redis.call('PUBLISH', KEYS[2], ARGV[2])
return 1
"""


class FleetFlags:
    def __init__(
        self,
        store: FlagStore,
        url: str,
        prefix: str = "voice-agent",
        timeout_s: float = 0.5,
        check_s: float = 1.0,
    ) -> None:
        self.store = store
        self._key, self._channel = f"{prefix}:flags", f"{prefix}:flags:changed"
        self._check_s = check_s
        self._redis = Redis.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
        )
        self._listen = Redis.from_url(
            url, socket_timeout=timeout_s + check_s, socket_connect_timeout=timeout_s
        )
        self._swap = self._redis.register_script(SWAP)
        self._tasks = TaskScope("fleet-flags")
        self._pending: list[tuple[FlagsPatch, str]] = []  # rollbacks Redis has not taken yet
        self._flushing: asyncio.Task[None] | None = None
        self.connected = False
        self.stale_since: float | None = None  # wall clock; None while in step with Redis

    async def start(self) -> None:
        """Join the fleet: adopt its flags, or give it this process's when it has none."""
        try:
            await self._join()
        except (RedisError, OSError) as exc:
            self._lost(exc)
        self._tasks.spawn(self._follow(), name="follow")

    async def aclose(self) -> None:
        await self._tasks.cancel_all(1.0)
        await self._redis.aclose()
        await self._listen.aclose()

    def status(self) -> dict[str, Any]:
        return {
            "shared": True,
            "version": self.store.version,
            "in_step": self.connected,
            "stale_since": self.stale_since,
        }

    async def change(self, patch: FlagsPatch, who: str) -> Flags:
        """Change the fleet's flags (an engineer's PATCH). Raises FleetUnavailable when Redis
        cannot take it: a change made on one process only would split the fleet."""
        try:
            return await self._write(patch, who)
        except (RedisError, OSError) as exc:
            self._lost(exc)
            raise FleetUnavailable(f"the fleet's flags are in Redis, which failed: {exc}") from exc

    def change_now(self, patch: FlagsPatch, who: str) -> None:
        """An automatic rollback: this process obeys at once (callers first), and the fleet as
        soon as Redis takes it; the audit line is written then, by whichever process made it."""
        now = self.store.patched(self.store.current, patch)
        self.store.adopt(now, self.store.version, who=f"{who} (this process, ahead of the fleet)")
        self._pending.append((patch, who))
        if self._flushing is None or self._flushing.done():
            self._flushing = self._tasks.spawn(self._flush(), name="rollback")

    async def _join(self) -> None:
        document = await self._redis.get(self._key)
        if document is None:
            first = self._document(self.store.current, 1, "start-up")
            if await self._swap(keys=[self._key, self._channel], args=[0, first]):
                self.store.adopt(self.store.current, 1, who=None)
                self._in_step()
                return
            document = await self._redis.get(self._key)
        if document is not None:
            self._adopt(document)
        self._in_step()

    async def _write(self, patch: FlagsPatch, who: str) -> Flags:
        for _ in range(10):  # another process changed them meanwhile: patch the newer ones
            document = await self._redis.get(self._key)
            base, version = (self.store.current, 0) if document is None else self._read(document)
            new = self.store.patched(base, patch)
            if new == base and document is not None:
                self._adopt(document)
                return new  # the fleet is already so: nothing to change, nothing to audit
            text = self._document(new, version + 1, who)
            if await self._swap(keys=[self._key, self._channel], args=[version, text]):
                self.store.record(who, base, new)
                self.store.adopt(new, version + 1, who=who)
                self._in_step()
                return new
        raise FleetUnavailable("the fleet's flags kept changing under this change; try again")

    async def _flush(self) -> None:
        while self._pending:
            patch, who = self._pending[0]
            try:
                await self._write(patch, who)
            except (RedisError, OSError) as exc:
                self._lost(exc)
                await asyncio.sleep(self._check_s)
                continue
            except FleetUnavailable as exc:  # changed under it ten times: a rollback still waits
                log.warning("[FLEET] the rollback is not written yet (%s); trying again", exc)
                await asyncio.sleep(self._check_s)
                continue
            self._pending.pop(0)

    async def _follow(self) -> None:
        """Adopt every newer version: from the channel at once, from a check every `check_s`."""
        while True:
            try:
                async with self._listen.pubsub() as channel:
                    await channel.subscribe(self._channel)
                    await self._check()
                    while True:
                        message = await channel.get_message(
                            ignore_subscribe_messages=True, timeout=self._check_s
                        )
                        if message is not None:
                            self._adopt(message["data"])
                        else:
                            await self._check()
            except (RedisError, OSError) as exc:
                self._lost(exc)
                await asyncio.sleep(self._check_s)

    async def _check(self) -> None:
        if self._pending and (self._flushing is None or self._flushing.done()):
            await self._flush()
        document = await self._redis.get(self._key)
        if document is not None:
            self._adopt(document)
        self._in_step()

    def _adopt(self, document: bytes | str) -> None:
        """Take the fleet's flags when they are newer than this process's."""
        try:
            flags, version = self._read(document)
        except (ValueError, KeyError, TypeError) as exc:
            log.error("[FLAGS] the fleet's flags document cannot be read: %s", exc)
            return
        if version > self.store.version:
            self.store.adopt(flags, version, who=None)

    @staticmethod
    def _read(document: bytes | str) -> tuple[Flags, int]:
        body = json.loads(document)
        return Flags(**body["flags"]), int(body["version"])

    @staticmethod
    def _document(flags: Flags, version: int, who: str) -> str:
        body = {"version": version, "flags": asdict(flags), "who": who, "at": round(time.time(), 3)}
        return json.dumps(body)

    def _in_step(self) -> None:
        if not self.connected:
            log.info("[FLAGS] in step with the fleet at version %s", self.store.version)
        self.connected, self.stale_since = True, None

    def _lost(self, exc: Exception) -> None:
        if self.connected or self.stale_since is None:
            log.warning("[FLAGS] Redis unavailable (%s); keeping flags version %s",
                        exc, self.store.version)  # fmt: skip
            self.stale_since = round(time.time(), 3)
        self.connected = False
