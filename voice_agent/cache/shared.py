"""The shared layer of the response cache: answers replicated between server processes through
a Redis stream.

Every process keeps its whole cache in memory and answers from it; Redis is only the log that
carries new answers (and flushes) from the process that made them to the others. A turn never
waits on Redis: publishing goes through a bounded queue to a writer task, and a reader task
applies what other processes wrote. When Redis is down or slow, both tasks back off and retry,
the queue drops what it cannot hold, and calls go on answering from the local cache and the LLM.
A process that starts, or comes back, reads the stream from where it left off (from the start,
the first time), so a new pod begins with the answers the others have already made.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
from redis.asyncio import Redis
from redis.exceptions import RedisError

from voice_agent.cache.store import CachedAnswer, CacheScope, Origin, ResponseCache
from voice_agent.errors import CacheBackendError
from voice_agent.tasks import TaskScope
from voice_agent.types import Vector

log = logging.getLogger(__name__)

READ_BLOCK_MS = 1000  # a reader waits this long for news before asking again
READ_BATCH = 500


@dataclass(frozen=True, slots=True)
class SharedCacheConfig:
    url: str
    prefix: str = "voice-agent:cache"
    max_entries: int = 100_000  # the stream is trimmed to about this many answers
    timeout_s: float = 0.5  # for each Redis command (never on a turn's path)
    retry_s: float = 1.0  # first wait after a failure; doubles up to retry_max_s
    retry_max_s: float = 10.0
    queue_size: int = 1000  # answers waiting to be published; past this they are dropped


@dataclass(slots=True)
class SharedCacheStats:
    published: int = 0
    applied: int = 0  # answers from other processes taken into the local cache
    dropped: int = 0  # answers not published (queue full or Redis down)
    errors: int = 0
    connected: bool = False


class SharedCache:
    def __init__(self, cache: ResponseCache, config: SharedCacheConfig) -> None:
        self.config = config
        self.stats = SharedCacheStats()
        self.node = uuid.uuid4().hex[:12]  # this process; its own entries are not re-applied
        self._cache = cache
        self._stream = f"{config.prefix}:log"
        self._writer = Redis.from_url(
            config.url, socket_timeout=config.timeout_s, socket_connect_timeout=config.timeout_s
        )
        read_timeout = config.timeout_s + READ_BLOCK_MS / 1000
        self._reader = Redis.from_url(
            config.url, socket_timeout=read_timeout, socket_connect_timeout=config.timeout_s
        )
        self._queue: asyncio.Queue[dict[Any, Any]] = asyncio.Queue(config.queue_size)
        self._tasks = TaskScope("shared-cache")
        self._last_id = "0-0"

    async def start(self) -> None:
        self._tasks.spawn(self._read_forever(), name="reader")
        self._tasks.spawn(self._write_forever(), name="writer")

    async def aclose(self) -> None:
        await self._tasks.cancel_all(1.0)
        await self._writer.aclose()
        await self._reader.aclose()

    def publish(
        self, scope: CacheScope, entry: CachedAnswer, vector: Vector, answer_vector: Vector
    ) -> None:
        fields: dict[Any, Any] = {
            "op": "store",
            "node": self.node,
            "flow": scope.flow,
            "state": scope.state,
            "kb": scope.kb_version,
            "lang": scope.language,
            "question": entry.question,
            "answer": entry.answer,
            "origin": entry.origin,
            "stored_at": repr(entry.stored_at),
            "qv": np.asarray(vector, dtype=np.float32).tobytes(),
            "av": np.asarray(answer_vector, dtype=np.float32).tobytes(),
        }
        try:
            self._queue.put_nowait(fields)
        except asyncio.QueueFull:
            self.stats.dropped += 1

    async def flush(self) -> None:
        """Empty the shared log and tell every process to empty its cache.
        Raises CacheBackendError (the caller reports it) when Redis cannot be reached."""
        try:
            async with self._writer.pipeline(transaction=True) as pipe:
                pipe.delete(self._stream)
                pipe.xadd(self._stream, {"op": "flush", "node": self.node})
                await pipe.execute()
        except (RedisError, OSError) as exc:
            raise CacheBackendError(f"Redis at {self.config.url}: {exc}") from exc

    async def _write_forever(self) -> None:
        retry = self.config.retry_s
        while True:
            fields = await self._queue.get()
            try:
                await self._writer.xadd(
                    self._stream, fields, maxlen=self.config.max_entries, approximate=True
                )
                self.stats.published += 1
                retry = self.config.retry_s
            except (RedisError, OSError) as exc:
                self.stats.dropped += 1
                retry = await self._failed("publish", exc, retry)

    async def _read_forever(self) -> None:
        retry = self.config.retry_s
        while True:
            try:
                batches = await self._reader.xread(
                    {self._stream: self._last_id}, count=READ_BATCH, block=READ_BLOCK_MS
                )
                if not self.stats.connected:
                    log.info("shared cache: reading %s at %s", self._stream, self.config.url)
                self.stats.connected = True
                retry = self.config.retry_s
            except (RedisError, OSError) as exc:
                retry = await self._failed("read", exc, retry)
                continue
            # [[stream, [(id, {field: value}), ...]]], all bytes
            replies = cast(list[tuple[bytes, list[tuple[bytes, dict[bytes, bytes]]]]], batches)
            for _stream, entries in replies:
                for entry_id, fields in entries:
                    self._last_id = entry_id.decode()
                    self._apply(fields)

    async def _failed(self, what: str, exc: Exception, retry: float) -> float:
        self.stats.errors += 1
        if self.stats.connected:
            log.warning("shared cache unavailable (%s: %s); serving from this process", what, exc)
        self.stats.connected = False
        await asyncio.sleep(retry)
        return min(retry * 2, self.config.retry_max_s)

    def _apply(self, fields: dict[bytes, bytes]) -> None:
        text = {k.decode(): v for k, v in fields.items()}
        if text.get("node", b"").decode() == self.node:
            return
        op = text.get("op", b"").decode()
        if op == "flush":
            self._cache.flush()
            return
        if op != "store":
            return
        try:
            scope = CacheScope(
                text["flow"].decode(),
                text["state"].decode(),
                text["kb"].decode(),
                text["lang"].decode(),
            )
            origin: Origin = "warm" if text["origin"] == b"warm" else "answer"
            self._cache.store(
                text["question"].decode(),
                np.frombuffer(text["qv"], dtype=np.float32),
                text["answer"].decode(),
                scope,
                answer_vector=np.frombuffer(text["av"], dtype=np.float32),
                origin=origin,
                stored_at=float(text["stored_at"]),
            )
            self.stats.applied += 1
        except (KeyError, ValueError, UnicodeDecodeError) as exc:
            log.warning("shared cache: skipped a malformed entry (%s)", exc)
