"""The response cache: answers the knowledge base + LLM already gave, served again in
milliseconds, exactly or to a question that means the same.

Everything that changes the right answer is part of the scope (flow, state, knowledge-base
version, language), so an answer can only be served where it was generated, and re-ingesting
the knowledge base moves every lookup to a new, empty scope. The exact layer is a TTL cache on
the normalized question; the semantic layer keeps one vector index per scope and lets
`cache_policy.decide` judge the nearest stored questions. Stored answers that say the same
thing share a group, so the policy can see when neighbours agree.

Times are wall-clock seconds (`time.time`): entries travel between processes (shared_cache.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
from cachetools import TTLCache

from quick_responses.intents import normalize
from voice_agent.cache.index import QuestionIndex
from voice_agent.cache.policy import CachePolicy, Neighbour, decide
from voice_agent.quality import lexicon
from voice_agent.types import Vector

EXPIRE_EVERY = 1000  # stores between two sweeps of the semantic layer for expired answers

HitKind = Literal["exact", "semantic"]
Origin = Literal["answer", "warm"]


@dataclass(frozen=True, slots=True)
class CacheScope:
    flow: str
    state: str
    kb_version: str  # a fingerprint of the knowledge base's content
    language: str = "en"

    def key(self) -> str:
        return f"{self.flow}|{self.state}|{self.kb_version}|{self.language}"


@dataclass(frozen=True, slots=True)
class CachedAnswer:
    question: str
    answer: str
    stored_at: float
    origin: Origin = "answer"
    group: int = 0  # answers in one scope that say the same thing share a group


@dataclass(frozen=True, slots=True)
class CacheHit:
    entry: CachedAnswer
    kind: HitKind
    similarity: float
    age_s: float


@dataclass(frozen=True, slots=True)
class CacheMiss:
    best_similarity: float = 0.0
    reason: str = "empty"


class _Groups:
    """A scope's answer groups: equal texts, or vectors at least `threshold` apart with the
    same numbers and polarity (so "open at 9" and "open at 10" stay apart)."""

    def __init__(self, dimension: int) -> None:
        self._by_text: dict[str, int] = {}
        self._vectors = np.zeros((16, dimension), dtype=np.float32)
        self._owners: list[int] = []  # the group of each row of _vectors
        self._traits: list[tuple[frozenset[str], bool]] = []
        self.count = 0

    def of(self, answer: str, vector: Vector | None, threshold: float) -> int:
        known = self._by_text.get(answer)
        if known is not None:
            return known
        traits = (lexicon.numbers(answer), lexicon.negated(answer))
        group = None
        if vector is not None and self._owners:
            similarities = self._vectors[: len(self._owners)] @ vector
            for row in np.argsort(-similarities):
                if similarities[row] < threshold:
                    break
                if self._traits[self._owners[row]] == traits:
                    group = self._owners[row]
                    break
        if group is None:
            group = self.count
            self.count += 1
            self._traits.append(traits)
        self._by_text[answer] = group
        if vector is not None:
            if len(self._owners) == len(self._vectors):
                self._vectors = np.vstack([self._vectors, np.zeros_like(self._vectors)])
            self._vectors[len(self._owners)] = vector
            self._owners.append(group)
        return group


class _ScopeIndex:
    """One scope's stored questions and its answer groups."""

    def __init__(self, dimension: int) -> None:
        self.questions: QuestionIndex[CachedAnswer] = QuestionIndex(dimension)
        self.groups = _Groups(dimension)

    def drop_older_than(self, cutoff: float) -> None:
        self.questions.remove_where(lambda e: e.origin != "warm" and e.stored_at < cutoff)


class ResponseCache:
    def __init__(
        self,
        *,
        ttl_s: float,
        max_entries: int,
        policy: CachePolicy | None = None,
        same_answer: float = 0.92,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.policy = policy or CachePolicy()
        self._same_answer = same_answer
        self._ttl_s = ttl_s
        self._clock = clock
        self._max_entries = max_entries
        self._exact: TTLCache[str, CachedAnswer] = TTLCache(max_entries, ttl_s, timer=clock)
        self._warm: dict[str, CachedAnswer] = {}  # exact keys of warm answers: no TTL
        self._scopes: dict[str, _ScopeIndex] = {}
        self._stores = 0

    def __len__(self) -> int:
        return sum(len(index.questions) for index in self._scopes.values())

    def _fresh(self, entry: CachedAnswer) -> bool:
        # Warm answers (FAQ pairs, `voice-agent warm`) last as long as their knowledge base.
        return entry.origin == "warm" or self._clock() - entry.stored_at < self._ttl_s

    def lookup_exact(self, question: str, scope: CacheScope) -> CacheHit | None:
        key = f"{scope.key()}|{normalize(question)}"
        entry = self._exact.get(key) or self._warm.get(key)
        if entry is None or not self._fresh(entry):
            return None
        return CacheHit(entry, "exact", 1.0, self._clock() - entry.stored_at)

    def lookup(
        self, question: str, vector: Vector | None, scope: CacheScope
    ) -> CacheHit | CacheMiss:
        """Exact first; then, with the question's vector, the semantic layer."""
        exact = self.lookup_exact(question, scope)
        if exact is not None:
            return exact
        return self.lookup_semantic(question, vector, scope)

    def nearest(
        self, vector: Vector, scope: CacheScope, k: int
    ) -> list[tuple[float, CachedAnswer]]:
        """The `k` stored questions nearest to `vector`, without judging them (benches, explain)."""
        index = self._scopes.get(scope.key())
        return [] if index is None else index.questions.nearest(vector, k)

    def lookup_semantic(
        self, question: str, vector: Vector | None, scope: CacheScope
    ) -> CacheHit | CacheMiss:
        """The semantic layer alone."""
        index = self._scopes.get(scope.key())
        if vector is None or index is None:
            return CacheMiss()
        found = [
            (similarity, entry)
            for similarity, entry in index.questions.nearest(vector, self.policy.neighbours)
            if self._fresh(entry)
        ]
        neighbours = [Neighbour(s, e.question, e.group) for s, e in found]
        verdict = decide(question, neighbours, self.policy)
        if verdict.serve is None:
            return CacheMiss(found[0][0] if found else 0.0, verdict.reason)
        similarity, entry = found[verdict.serve]
        return CacheHit(entry, "semantic", similarity, self._clock() - entry.stored_at)

    def store(
        self,
        question: str,
        vector: Vector,
        answer: str,
        scope: CacheScope,
        *,
        answer_vector: Vector | None = None,
        origin: Origin = "answer",
        stored_at: float | None = None,
    ) -> CachedAnswer:
        """Keep an answer. With `answer_vector`, answers worded differently but saying the
        same thing (same numbers, same polarity) join one group; without, only equal texts do."""
        index = self._scopes.setdefault(scope.key(), _ScopeIndex(len(vector)))
        group = index.groups.of(normalize(answer), answer_vector, self._same_answer)
        at = self._clock() if stored_at is None else stored_at
        entry = CachedAnswer(question, answer, at, origin, group)
        layer = self._warm if origin == "warm" else self._exact
        layer[f"{scope.key()}|{normalize(question)}"] = entry
        index.questions.add(vector, entry)
        if len(index.questions) > self._max_entries:
            index.questions.remove_oldest(max(1, self._max_entries // 10))
        self._stores += 1
        if self._stores % EXPIRE_EVERY == 0:
            self.expire()
        return entry

    def answers(self) -> set[str]:
        """Every answer held (warm and stored), once each."""
        return {e.answer for e in self._warm.values()} | {e.answer for e in self._exact.values()}

    def expire(self) -> None:
        """Drop what the TTL has passed (the exact layer does it by itself)."""
        cutoff = self._clock() - self._ttl_s
        for index in self._scopes.values():
            index.drop_older_than(cutoff)

    def flush(self) -> int:
        count = len(self)
        self._exact.clear()
        self._warm.clear()
        self._scopes.clear()
        return count

    def keep_only_knowledge(self, kb_version: str) -> int:
        """Answers built on another knowledge base can never be served again: free them."""

        def stale(key: str) -> bool:
            return key.split("|")[2] != kb_version

        dropped = 0
        for key in [k for k in self._scopes if stale(k)]:
            dropped += len(self._scopes.pop(key).questions)
        for layer in (self._exact, self._warm):
            for key in [k for k in layer if stale(k)]:
                del layer[key]
        return dropped
