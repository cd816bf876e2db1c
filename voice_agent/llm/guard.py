"""Keeps a token stream inside a turn's budgets.

Three limits, all measured on the event loop's clock from the start of the stream:
- first-token budget: if no token has come by then, a filler line is spoken while waiting;
- stall limit: once tokens flow, the longest gap allowed between two of them;
- hard limit: the whole answer must be done by then.
A limit that runs out raises `LLMTimeout` and closes the stream, which stops the model.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import Literal

from voice_agent.errors import LLMTimeout
from voice_agent.types import Budgets

EventKind = Literal["filler", "token"]


async def _next(stream: AsyncGenerator[str, None]) -> str:
    return await anext(stream)


async def guarded(
    stream: AsyncGenerator[str, None], budgets: Budgets
) -> AsyncGenerator[tuple[EventKind, str], None]:
    """Yield `("filler", "")` once when the first-token budget passes with no token, and
    `("token", text)` for each token; raise `LLMTimeout` when the stall or hard limit runs out."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    hard_deadline = started + budgets.total_s
    filler_deadline: float | None = started + budgets.first_token_s
    last_token_at: float | None = None
    async with aclosing(stream):
        pending = loop.create_task(_next(stream), name="llm-next-token")
        try:
            while True:
                now = loop.time()
                if last_token_at is None:
                    deadline, phase = hard_deadline, "first_token"
                else:
                    stall_deadline = last_token_at + budgets.stall_s
                    deadline, phase = min((hard_deadline, "total"), (stall_deadline, "stall"))
                wake_at = deadline if filler_deadline is None else min(deadline, filler_deadline)
                done, _ = await asyncio.wait({pending}, timeout=max(0.0, wake_at - now))
                if not done:
                    now = loop.time()
                    if filler_deadline is not None and now >= filler_deadline:
                        filler_deadline = None
                        yield ("filler", "")
                        continue
                    if now >= deadline:
                        limit = {
                            "first_token": budgets.total_s,
                            "total": budgets.total_s,
                            "stall": budgets.stall_s,
                        }[phase]
                        raise LLMTimeout(phase, limit)
                    continue
                try:
                    text = pending.result()
                except StopAsyncIteration:
                    return
                last_token_at = loop.time()
                filler_deadline = None
                yield ("token", text)
                pending = loop.create_task(_next(stream), name="llm-next-token")
        finally:
            await _settle(pending)


async def _settle(read: asyncio.Task[str]) -> None:
    """Stop the read in flight when the answer is abandoned (barge-in, a limit, the end), and
    take its outcome: a read that fails as it is stopped (a connection reset) is part of the
    stopping, not an error left for the loop to report ("never retrieved")."""
    if not read.done():
        read.cancel()
        await asyncio.wait({read})  # our own cancellation still propagates from here
    if not read.cancelled():
        read.exception()
