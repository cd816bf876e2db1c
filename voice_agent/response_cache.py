"""The response cache: answers the knowledge base + LLM already gave, served again in
milliseconds, exactly or to a question that means the same.

Everything that changes the right answer is part of the scope (flow, state, knowledge-base
version, language), so an answer can only be served where it was generated, and re-ingesting
the knowledge base moves every lookup to a new, empty scope. The exact layer is a TTL cache on
the normalized question; the semantic layer keeps one vector index per scope and serves the
nearest stored question above a similarity threshold, unless a near-miss guard refuses it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from cachetools import TTLCache

from quick_responses.intents import normalize
from voice_agent import cache_guards
from voice_agent.types import Vector

HitKind = Literal["exact", "semantic"]


@dataclass(frozen=True, slots=True)
class CacheScope:
    flow: str
    state: str
    kb_version: int
    language: str = "en"

    def key(self) -> str:
        return f"{self.flow}|{self.state}|kb{self.kb_version}|{self.language}"


@dataclass(frozen=True, slots=True)
class CachedAnswer:
    question: str
    answer: str
    stored_at: float
    origin: Literal["answer", "warm"] = "answer"


@dataclass(frozen=True, slots=True)
class CacheHit:
    entry: CachedAnswer
    kind: HitKind
    similarity: float
    age_s: float


@dataclass(frozen=True, slots=True)
class CacheMiss:
    best_similarity: float = 0.0
    refused: str | None = None  # the near-miss guard that refused the nearest question


@dataclass
class _ScopeIndex:
    """Vectors of one scope's stored questions, in a growing array (amortized appends)."""

    dimension: int
    vectors: Vector = field(init=False)
    entries: list[CachedAnswer] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.vectors = np.zeros((64, self.dimension), dtype=np.float32)

    def add(self, vector: Vector, entry: CachedAnswer) -> None:
        if len(self.entries) == len(self.vectors):
            grown = np.zeros((2 * len(self.vectors), self.dimension), dtype=np.float32)
            grown[: len(self.entries)] = self.vectors
            self.vectors = grown
        self.vectors[len(self.entries)] = vector
        self.entries.append(entry)

    def nearest(self, vector: Vector, k: int) -> list[tuple[float, CachedAnswer]]:
        count = len(self.entries)
        if count == 0:
            return []
        similarities = self.vectors[:count] @ vector
        k = min(k, count)
        top = np.argpartition(-similarities, k - 1)[:k]
        top = top[np.argsort(-similarities[top])]
        return [(float(similarities[i]), self.entries[i]) for i in top]

    def drop_oldest(self, count: int) -> None:
        """Forget the `count` questions stored first."""
        remaining = len(self.entries) - count
        self.vectors[:remaining] = self.vectors[count : len(self.entries)]
        self.entries = self.entries[count:]

    def drop_older_than(self, cutoff: float) -> None:
        keep = [i for i, e in enumerate(self.entries) if e.stored_at >= cutoff]
        if len(keep) == len(self.entries):
            return
        self.vectors[: len(keep)] = self.vectors[keep]
        self.entries = [self.entries[i] for i in keep]


class ResponseCache:
    def __init__(
        self,
        *,
        ttl_s: float,
        max_entries: int,
        threshold: float,
        check_topics: bool = True,
        candidates: int = 3,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.threshold = threshold
        self.check_topics = check_topics
        self._ttl_s = ttl_s
        self._candidates = candidates
        self._clock = clock
        self._max_entries = max_entries
        self._exact: TTLCache[str, CachedAnswer] = TTLCache(max_entries, ttl_s, timer=clock)
        self._scopes: dict[str, _ScopeIndex] = {}

    def __len__(self) -> int:
        return sum(len(index.entries) for index in self._scopes.values())

    def _fresh(self, entry: CachedAnswer) -> bool:
        return self._clock() - entry.stored_at < self._ttl_s

    def lookup(
        self, question: str, vector: Vector | None, scope: CacheScope
    ) -> CacheHit | CacheMiss:
        """Exact first; then, with the question's vector, the semantic layer."""
        now = self._clock()
        entry = self._exact.get(f"{scope.key()}|{normalize(question)}")
        if entry is not None:
            return CacheHit(entry, "exact", 1.0, now - entry.stored_at)
        index = self._scopes.get(scope.key())
        if vector is None or index is None:
            return CacheMiss()
        best, refused = 0.0, None
        for similarity, candidate in index.nearest(vector, self._candidates):
            best = max(best, similarity)
            if similarity < self.threshold:
                break
            if not self._fresh(candidate):
                continue
            refused = cache_guards.near_miss(question, candidate.question, self.check_topics)
            if refused is None:
                return CacheHit(candidate, "semantic", similarity, now - candidate.stored_at)
        return CacheMiss(best, refused)

    def store(
        self,
        question: str,
        vector: Vector,
        answer: str,
        scope: CacheScope,
        origin: Literal["answer", "warm"] = "answer",
    ) -> None:
        entry = CachedAnswer(question, answer, self._clock(), origin)
        self._exact[f"{scope.key()}|{normalize(question)}"] = entry
        index = self._scopes.setdefault(scope.key(), _ScopeIndex(len(vector)))
        index.add(vector, entry)
        if len(index.entries) > self._max_entries:
            index.drop_oldest(max(1, self._max_entries // 10))

    def expire(self) -> None:
        """Drop what the TTL has passed (the exact layer does it by itself)."""
        cutoff = self._clock() - self._ttl_s
        for index in self._scopes.values():
            index.drop_older_than(cutoff)

    def flush(self) -> int:
        count = len(self)
        self._exact.clear()
        self._scopes.clear()
        return count

    def drop_knowledge_versions_below(self, version: int) -> None:
        """Answers built on an older knowledge base can never be served again; free them."""
        stale = [k for k in self._scopes if int(k.split("|kb")[1].split("|")[0]) < version]
        for key in stale:
            del self._scopes[key]
        for key in [k for k in self._exact if int(k.split("|kb")[1].split("|")[0]) < version]:
            del self._exact[key]
