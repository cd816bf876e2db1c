"""The cache tier: answers the knowledge base + LLM already gave, served again in milliseconds.

It sits after the quick tier and before the knowledge tier. A lookup is exact first (no
embedding needed), then semantic with the utterance's vector (shared with the other tiers).
When a later tier answers, the chain lets this tier follow the reply: once the answer has been
spoken to its end, and only if it may be cached, it is stored in the background, off the turn.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Callable, Sequence
from contextlib import aclosing

from quick_responses.intents import normalize
from voice_agent.cache.shared import SharedCache
from voice_agent.cache.store import CacheHit, CacheScope, Origin, ResponseCache
from voice_agent.cache.warming import WarmAnswer, scopes_for
from voice_agent.errors import EncoderSlow
from voice_agent.listeners import Listeners
from voice_agent.quality.contradiction import objections
from voice_agent.quality.score import score_answer
from voice_agent.redaction import redact
from voice_agent.tasks import TaskScope
from voice_agent.tiers.chain import say
from voice_agent.turn import now
from voice_agent.types import Pass, Reply, TurnRequest, Vector
from voice_agent.utterance import Embed

log = logging.getLogger(__name__)

MAX_PENDING_STORES = 64  # answers waiting for their embedding; past this they are not cached
# A question that leans on the previous turn ("and on Sunday?") has an answer that depends on
# the call, not only on the words: it is not stored.
_FOLLOW_UP_OPENINGS = ("and ", "what about ", "how about ", "also ", "but ", "same ", "then ")
# A short question about "it" or "that" names its subject only in an earlier turn.
_POINTING_WORDS = frozenset("it its that this they them those these he she him her".split())
SHORT_QUESTION_WORDS = 6


def why_not_stored(request: TurnRequest, reply: Reply) -> str | None:
    """None when the reply may be cached for the request's question; otherwise why not."""
    if not request.cacheable:
        return "state not cacheable"
    if reply.source != "llm" or reply.answer is None:
        return f"source {reply.source}" if reply.source != "llm" else "answer incomplete"
    if request.utterance.known_vector is None:
        return "no question vector"
    question = normalize(request.text)
    if question.startswith(_FOLLOW_UP_OPENINGS):
        return "follow-up question"
    spoken = question.split()
    if len(spoken) <= SHORT_QUESTION_WORDS and _POINTING_WORDS.intersection(spoken):
        return "follow-up question"
    if redact(request.text) != request.text or redact(reply.answer) != reply.answer:
        return "contains the caller's own data"  # a card, a phone, an e-mail, a long number
    answer = normalize(reply.answer)
    for value in request.private:
        value = normalize(value)
        if value and (value in question or value in answer):
            return "contains the caller's own data"
    found = objections(request.text, reply.answer, reply.context)
    if found:
        # A wrong answer served once is one wrong call; cached, it is every caller's.
        return f"contradicts its source ({found[0]})"
    return None


class CacheTier:
    name = "cache"

    def __init__(
        self,
        cache: ResponseCache,
        embed: Embed,
        kb_version: Callable[[], str],
        shared: SharedCache | None = None,
        language: str = "en",
        min_quality: float = 0.0,
        store_check: Callable[[TurnRequest, Reply], str | None] = why_not_stored,
        embed_later: Embed | None = None,
    ) -> None:
        self.cache = cache
        self._store_check = store_check
        self.min_quality = min_quality
        self.rejected = 0  # answers not stored for their quality
        self.shared = shared
        self._embed = embed
        # For an answer to store: no caller waits on it, so it goes behind the calls' sentences.
        self._embed_later = embed_later or embed
        self._kb_version = kb_version
        self._language = language
        self._stores = TaskScope("cache")
        self.stored: Listeners[[str]] = Listeners("cache store")  # told each answer kept

    def scope(self, request: TurnRequest) -> CacheScope:
        return CacheScope(request.flow, request.state, self._kb_version(), self._language)

    async def respond(self, request: TurnRequest) -> Reply | Pass:
        if not request.cacheable:
            return Pass(self.name, "state not cacheable")
        started = now()
        scope = self.scope(request)
        result = self.cache.lookup_exact(request.text, scope)
        if result is None:
            try:
                vector = await request.utterance.vector()
            except EncoderSlow:
                return Pass(self.name, "encoder_slow")
            started = now()
            looked = self.cache.lookup_semantic(request.text, vector, scope)
            request.record.add_duration("cache", started)
            if not isinstance(looked, CacheHit):
                evidence = {
                    "best_similarity": round(looked.best_similarity, 4),
                    "reason": looked.reason,
                }
                return Pass(self.name, looked.reason, evidence)
            result = looked
        else:
            request.record.add_duration("cache", started)
        entry = result.entry
        return Reply(
            source="cache",
            pieces=say(entry.answer),
            detail={
                "cache": {
                    "kind": "warm" if entry.origin == "warm" else result.kind,
                    "similarity": round(result.similarity, 4),
                    "stored_for": entry.question,
                    "age_s": round(result.age_s, 3),
                }
            },
            cache="hit",
        )

    def follow(self, request: TurnRequest, reply: Reply, passes: Sequence[Pass] = ()) -> Reply:
        """Watch a later tier's reply; store it once it has been spoken to its end."""
        looked = next((p for p in passes if p.tier == self.name and p.evidence is not None), None)
        if looked is not None and looked.evidence is not None:
            reply.cache = "miss"
            reply.detail["cache"] = {"miss": dict(looked.evidence)}
        reply.pieces = self._watch(request, reply, reply.pieces)
        return reply

    async def _watch(
        self, request: TurnRequest, reply: Reply, pieces: AsyncGenerator[str, None]
    ) -> AsyncGenerator[str, None]:
        # Closed with this generator, so that a barge-in reaches the model at once.
        async with aclosing(pieces):
            async for piece in pieces:
                yield piece
        # Reached only when the whole answer was taken: not on barge-in or hang-up.
        reason = self._why_not_stored(request, reply)
        if reason is not None:
            reply.detail["cache_stored"] = False
            if reason.startswith("contradicts"):
                log.info("[CACHE] not stored: %s for %r", reason, redact(request.text))
            else:
                log.debug("not cached (%s): %r", reason, redact(request.text))
            return
        if self._stores.running >= MAX_PENDING_STORES:
            log.warning("cache store queue full; answer not cached")
            return
        vector = request.utterance.known_vector
        assert vector is not None and reply.answer is not None  # why_not_stored checked both
        reply.detail["cache_stored"] = True
        self._stores.spawn(
            self.remember(request.text, vector, reply.answer, self.scope(request)), name="store"
        )

    def _why_not_stored(self, request: TurnRequest, reply: Reply) -> str | None:
        """The store decision, run after the caller has heard the whole answer. A check that
        breaks (a bug in the contradiction rules, say) costs the cache one answer, never the
        turn: raised from here it would fail a turn already spoken and add an apology to it."""
        try:
            return self._store_check(request, reply)
        except Exception:  # the store decision's boundary: the answer is already spoken
            log.exception("[CACHE] not stored: the store check failed for %r", redact(request.text))
            return "store check failed"

    async def remember(
        self,
        question: str,
        vector: Vector,
        answer: str,
        scope: CacheScope,
        origin: Origin = "answer",
    ) -> None:
        """Store locally (answers are grouped by their own embedding) and share; an answer
        that scores below `min_quality` is not kept (it would be repeated to every caller)."""
        answer_vector = await self._embed_later(answer)
        if origin == "answer" and self.min_quality > 0:
            # Contradictions were refused before (why_not_stored): relevance and speech here.
            quality = score_answer(answer, vector, answer_vector)
            if quality.score < self.min_quality:
                log.info(
                    "[CACHE] not stored: quality %s < %s for %r", quality.score,
                    self.min_quality, redact(question),
                )  # fmt: skip
                self.rejected += 1
                return
        entry = self.cache.store(
            question,
            vector,
            answer,
            scope,
            answer_vector=answer_vector,
            origin=origin,
        )
        if self.shared is not None:
            self.shared.publish(scope, entry, vector, answer_vector)
        self.stored.notify(answer)

    def warm(
        self,
        answers: Sequence[WarmAnswer],
        scopes: Sequence[CacheScope],
        question_vectors: Sequence[Vector],
        answer_vectors: Sequence[Vector],
    ) -> int:
        """Store ready answers (FAQ pairs, a warm file) in the scopes they belong to."""
        stored = 0
        for answer, vector, answer_vector in zip(
            answers, question_vectors, answer_vectors, strict=True
        ):
            for scope in scopes_for(answer, scopes):
                self.cache.store(
                    answer.question,
                    vector,
                    answer.answer,
                    scope,
                    answer_vector=answer_vector,
                    origin="warm",
                )
                stored += 1
        return stored

    async def drain(self, wait_s: float) -> bool:
        """Let pending stores finish (tests, shutdown); True when none is left."""
        return await self._stores.wait(wait_s)
