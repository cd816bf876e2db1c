"""The caller's silence after the agent is done: past the state's timeout, a reminder."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from voice_agent.call.config import Sleep
from voice_agent.tasks import TaskScope


class SilenceTimer:
    def __init__(
        self,
        remind: Callable[[], Awaitable[None]],
        busy: Callable[[], bool],
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._remind = remind
        self._sleep = sleep
        self._busy = busy  # the agent is still talking: its turn re-arms the timer when done
        self._task: asyncio.Task[None] | None = None

    def arm(self, tasks: TaskScope, seconds: float) -> None:
        self.stop()
        self._task = tasks.spawn(self._wait(seconds), name="silence")

    def stop(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
        self._task = None

    async def _wait(self, seconds: float) -> None:
        await self._sleep(seconds)
        if self._busy():
            return
        self._task = None
        await self._remind()
