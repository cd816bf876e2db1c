"""Cheap work on the caller's partial transcript, done before the final one arrives.

While the caller is still speaking, frontends that send partial transcripts (Twilio's relay,
Retell's live transcript, the native protocol: `Utterance(final=False)`) let the service
embed the words so far and retrieve passages for them. When the final transcript is the same
text (spacing aside), the turn starts with that vector and those passages; otherwise they are
dropped and the turn computes its own. "The same" is strict on purpose: a question mark or a
capital changes the embedding a little, and with it, near a threshold, which tier answers;
speculation must save time without changing the answer. One computation runs per call at a
time, always on the newest partial, so a fast talker does not queue work.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from voice_agent.call.config import Embed
from voice_agent.tasks import TaskScope
from voice_agent.turn import TurnRecord, now
from voice_agent.types import Passage, Retriever, Vector
from voice_agent.utterance import Utterance

log = logging.getLogger(__name__)


def words_of(text: str) -> str:
    """A transcript as the encoder sees it: the same words, spacing aside."""
    return " ".join(text.split())


@dataclass(frozen=True, slots=True)
class Prepared:
    words: str
    vector: Vector
    passages: list[Passage] | None  # None: no retriever


def utterance_for(
    text: str,
    embed: Embed,
    record: TurnRecord,
    prepared: Prepared | None,
    embed_timeout_s: float | None = None,
) -> Utterance:
    """The final utterance of a turn, starting with what was prepared on its partials; its
    embedding is waited for at most `embed_timeout_s` from now."""
    deadline = None
    if embed_timeout_s is not None:
        deadline = asyncio.get_running_loop().time() + embed_timeout_s
    if prepared is None:
        return Utterance(text, embed, record, deadline=deadline)
    return Utterance(text, embed, record, prepared.vector, prepared.passages, deadline)


class Speculator:
    def __init__(self, embed: Embed, retriever: Retriever | None, tasks: TaskScope) -> None:
        self._embed = embed
        self._retriever = retriever
        self._tasks = tasks
        self._pending: str | None = None  # the newest partial not yet worked on
        self._working: str | None = None  # the words being worked on now
        self._ready: Prepared | None = None
        self._worker: asyncio.Task[None] | None = None
        self.partials = 0  # partials seen since the last final

    def partial(self, text: str) -> None:
        """The caller's words so far; starts work on them unless already done or under way."""
        self.partials += 1
        words = words_of(text)
        if not words or words in (self._working, self._ready and self._ready.words):
            self._pending = None
            return
        self._pending = text
        if self._worker is None or self._worker.done():
            self._worker = self._tasks.spawn(self._work(), name="speculation")

    async def _work(self) -> None:
        while self._pending is not None:
            text, self._pending = self._pending, None
            self._working = words_of(text)
            try:
                vector = await self._embed(text)
                passages = None
                if self._retriever is not None:
                    passages = await self._retriever.retrieve(text, None, vector)
            except Exception:  # speculation is optional: the turn does the work itself
                log.warning("speculative work on a partial failed", exc_info=True)
                self._ready = None
            else:
                self._ready = Prepared(self._working, vector, passages)
            finally:
                self._working = None

    async def take_for(self, text: str, record: TurnRecord) -> Prepared | None:
        """`take` for a final utterance, timed on its turn's record when there was anything to
        wait for."""
        if not self.partials:
            return None
        started = now()
        prepared = await self.take(text)
        record.add_duration("speculation_wait", started)
        return prepared

    async def take(self, text: str) -> Prepared | None:
        """The work done for these words, waiting for it if it is under way; None when the
        final says something else. Forgets everything either way."""
        words = words_of(text)
        if self._pending is not None and words_of(self._pending) != words:
            self._pending = None  # work not started on other words: not needed any more
        worker, self._worker = self._worker, None
        if worker is not None and not worker.done():
            if words in (self._working, self._pending and words_of(self._pending)):
                await asyncio.wait({worker})
            else:
                worker.cancel()
        ready, self._ready = self._ready, None
        self.partials = 0
        return ready if ready is not None and ready.words == words else None
