"""Owns a call's tasks: each is named, tracked until it ends, and cancelled with a bounded wait."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

log = logging.getLogger(__name__)


class TaskScope:
    def __init__(self, owner: str) -> None:
        self._owner = owner
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Coroutine[Any, Any, T], name: str) -> asyncio.Task[T]:
        task = asyncio.get_running_loop().create_task(coro, name=f"{self._owner}:{name}")
        self._tasks.add(task)
        task.add_done_callback(self._finished)
        return task

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("task %s failed", task.get_name(), exc_info=task.exception())

    @property
    def running(self) -> int:
        return len(self._tasks)

    async def cancel(self, task: asyncio.Task[Any], wait_s: float) -> bool:
        """Cancel `task` and wait for it at most `wait_s`; True when it has ended."""
        if task.done():
            return True
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=wait_s)
        if not done:
            log.warning("task %s still running %.3fs after cancel", task.get_name(), wait_s)
        return bool(done)

    async def wait(self, timeout_s: float) -> bool:
        """Wait for the running tasks to end by themselves; True when all have."""
        tasks = list(self._tasks)
        if not tasks:
            return True
        _, pending = await asyncio.wait(tasks, timeout=timeout_s)
        return not pending

    async def cancel_all(self, wait_s: float) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=wait_s)
            for task in pending:
                log.warning("task %s ignored cancellation for %.3fs", task.get_name(), wait_s)
