"""Every error the service raises is under VoiceAgentError, and third-party errors are
translated at the boundary: Redis that cannot be reached is a CacheBackendError."""

from __future__ import annotations

import inspect
import socket

import pytest

from voice_agent import errors
from voice_agent.cache.shared import SharedCache, SharedCacheConfig
from voice_agent.cache.store import ResponseCache
from voice_agent.errors import CacheBackendError


def test_every_error_class_is_under_the_root() -> None:
    classes = [c for _, c in inspect.getmembers(errors, inspect.isclass)]
    assert len(classes) >= 12
    assert all(issubclass(c, errors.VoiceAgentError) for c in classes)
    names = {c.__name__ for c in classes}
    assert {"ExplainError", "ChatError", "FlagError", "CacheBackendError"} <= names


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # closed again: nothing listens there


async def test_a_flush_that_cannot_reach_redis_raises_a_cache_backend_error() -> None:
    config = SharedCacheConfig(f"redis://127.0.0.1:{free_port()}", timeout_s=0.2)
    shared = SharedCache(ResponseCache(ttl_s=60, max_entries=10), config)
    try:
        with pytest.raises(CacheBackendError, match=r"Redis at redis://127\.0\.0\.1") as caught:
            await shared.flush()
        assert caught.value.retryable and caught.value.__cause__ is not None
    finally:
        await shared.aclose()
