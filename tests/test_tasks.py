"""TaskScope: every task a call starts is tracked, and a cancellation waits a bounded time for
a task that is slow to stop, then goes on without it."""

from __future__ import annotations

import asyncio
import logging

import pytest

from voice_agent.tasks import TaskScope

from .fakes import settle


async def stubborn(release: asyncio.Event, stopped: list[str]) -> None:
    """A task whose clean-up after a cancel waits for `release`."""
    try:
        await asyncio.Event().wait()
    except asyncio.CancelledError:
        await release.wait()
        stopped.append("cleaned up")
        raise


async def test_a_cancel_waits_only_its_bound_for_a_task_slow_to_stop(
    caplog: pytest.LogCaptureFixture,
) -> None:
    scope = TaskScope("call-1")
    release = asyncio.Event()
    stopped: list[str] = []
    task = scope.spawn(stubborn(release, stopped), name="turn-1")
    await settle()
    with caplog.at_level(logging.WARNING):
        ended = await scope.cancel(task, wait_s=0.01)
    assert not ended and not task.done() and scope.running == 1
    assert "call-1:turn-1 still running" in caplog.text
    release.set()
    await settle()
    assert task.cancelled() and stopped == ["cleaned up"] and scope.running == 0


async def test_cancel_all_ends_what_stops_and_reports_what_does_not(
    caplog: pytest.LogCaptureFixture,
) -> None:
    scope = TaskScope("call-2")
    release = asyncio.Event()
    quick = scope.spawn(asyncio.Event().wait(), name="quick")
    slow = scope.spawn(stubborn(release, []), name="slow")
    await settle()
    with caplog.at_level(logging.WARNING):
        await scope.cancel_all(wait_s=0.01)
    assert quick.cancelled() and not slow.done()
    assert "call-2:slow ignored cancellation" in caplog.text
    assert "call-2:quick" not in caplog.text
    release.set()
    await settle()
    assert slow.cancelled() and scope.running == 0


async def test_a_failed_task_is_logged_with_its_name_and_forgotten(
    caplog: pytest.LogCaptureFixture,
) -> None:
    scope = TaskScope("call-3")

    async def broken() -> None:
        raise ValueError("a bug")

    with caplog.at_level(logging.ERROR):
        task = scope.spawn(broken(), name="store")
        await settle()
    assert task.done() and scope.running == 0
    assert "task call-3:store failed" in caplog.text and "ValueError" in caplog.text
    assert await scope.wait(0.01) and await scope.cancel(task, 0.01)
