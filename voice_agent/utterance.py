"""The caller's words that a turn answers, with the work done on them once: the embedding is
computed on the first `await utterance.vector()` and shared by intent matching, the quick tier,
the cache and retrieval (and by the shadow probe beside the served answer); passages retrieved
on the caller's partial transcript come along.

A turn's utterance has a deadline for its embedding: an encoder that is slow (a queue of
other calls' sentences, a starved thread) makes `vector()` raise `EncoderSlow` then, and the
turn goes on without it rather than past its hard limit."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

from voice_agent.errors import EncoderSlow
from voice_agent.turn import TurnRecord, now
from voice_agent.types import Passage, Vector

Embed = Callable[[str], Awaitable[Vector]]


class Utterance:
    __slots__ = ("_busy", "_deadline", "_embed", "_record", "_vector", "passages", "text")

    def __init__(
        self,
        text: str,
        embed: Embed,
        record: TurnRecord | None = None,
        vector: Vector | None = None,
        passages: Sequence[Passage] | None = None,
        deadline: float | None = None,
    ) -> None:
        self.text = text
        self.passages = passages  # retrieved ahead, on the partials; None: not yet
        self._embed = embed
        self._record = record  # the turn's: the embedding's time is marked there
        self._vector = vector
        self._busy: asyncio.Event | None = None
        self._deadline = deadline  # on the event loop's clock; None: wait as long as it takes

    @property
    def known_vector(self) -> Vector | None:
        """The embedding if it has been computed, without computing it."""
        return self._vector

    async def vector(self) -> Vector:
        """The embedding, computed once however many ask at the same time. A computation that
        fails or is cancelled is not kept: the next to ask computes it afresh. Past the
        deadline, `EncoderSlow` (and at once for every later ask)."""
        if self._vector is not None or self._deadline is None:
            return await self._computed()
        try:
            async with asyncio.timeout_at(self._deadline):
                return await self._computed()
        except TimeoutError as exc:
            raise EncoderSlow(f"no embedding for {len(self.text)} characters in time") from exc

    async def _computed(self) -> Vector:
        while self._vector is None:
            if self._busy is not None:
                await self._busy.wait()
                continue
            busy = self._busy = asyncio.Event()
            try:
                started = now()
                vector = await self._embed(self.text)
                if self._record is not None:
                    self._record.add_duration("embedding", started)
                self._vector = vector
            finally:
                self._busy = None
                busy.set()
        return self._vector

    def __repr__(self) -> str:
        return f"Utterance({self.text!r})"
