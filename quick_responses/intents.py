"""Matches an utterance to an intent among the few a call's state can act on.

Cheapest first: the normalized text looked up among the examples; then the nearest example by
embedding, accepted only above a threshold and by a margin over the best other intent. Pure:
the caller supplies vectors (normalized, so a dot product is the cosine similarity).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

Vector = npt.NDArray[np.float32]

_NOT_WORD = re.compile(r"[^a-z0-9']+")


def normalize(text: str) -> str:
    """Lower case, punctuation to spaces, one space between words.

    "Yes, please!" becomes "yes please"."""
    return " ".join(_NOT_WORD.sub(" ", text.lower()).split())


def ranked_intents(
    rows: Sequence[tuple[str, str]], similarities: Vector
) -> list[tuple[str, float, str]]:
    """(intent, similarity, example) for each intent's closest example, best first. `rows`
    are (intent, example) pairs in the order of `similarities`."""
    best: dict[str, tuple[float, str]] = {}
    for (intent, example), score in zip(rows, similarities, strict=True):
        if intent not in best or score > best[intent][0]:
            best[intent] = (float(score), example)
    ranked = sorted(best.items(), key=lambda item: item[1][0], reverse=True)
    return [(intent, score, example) for intent, (score, example) in ranked]


@dataclass(frozen=True, slots=True)
class IntentMatch:
    intent: str
    score: float
    kind: Literal["exact", "embedding"]
    example: str


class IntentMatcher:
    def __init__(
        self,
        examples: Mapping[str, Sequence[str]],
        vectors: Vector,
        threshold: float,
        margin: float,
    ) -> None:
        self._rows = [(intent, text) for intent, texts in examples.items() for text in texts]
        if len(self._rows) != len(vectors):
            raise ValueError("one vector per example")
        self._vectors = vectors
        self._exact = {normalize(text): intent for intent, text in self._rows}
        self.threshold = threshold
        self.margin = margin
        self.intents = frozenset(examples)

    @classmethod
    def build(
        cls,
        examples: Mapping[str, Sequence[str]],
        embed_many: Callable[[Sequence[str]], Vector],
        threshold: float,
        margin: float,
    ) -> IntentMatcher:
        texts = [text for texts in examples.values() for text in texts]
        vectors = embed_many(texts) if texts else np.zeros((0, 1), dtype=np.float32)
        return cls(examples, vectors, threshold, margin)

    def exact(self, text: str, candidates: Collection[str]) -> IntentMatch | None:
        key = normalize(text)
        intent = self._exact.get(key)
        if intent is None or intent not in candidates:
            return None
        return IntentMatch(intent, 1.0, "exact", key)

    def nearest(
        self, vector: Vector, candidates: Collection[str] | Mapping[str, str]
    ) -> IntentMatch | None:
        """The best candidate intent by its closest example, if it clears the threshold and
        beats by the margin every intent that would lead elsewhere. `candidates` may map each
        intent to where it leads: intents that lead to the same place do not compete ("no,
        that's all, bye" is both deny and goodbye, and either ends the call)."""
        if not self._rows:
            return None
        outcome: Mapping[str, str] = (
            candidates if isinstance(candidates, Mapping) else {c: c for c in candidates}
        )
        ranked = ranked_intents(self._rows, self._vectors @ vector)
        intent, score, text = ranked[0]
        if intent not in outcome or score < self.threshold:
            return None
        rivals = [s for other, s, _ in ranked[1:] if outcome.get(other) != outcome[intent]]
        if rivals and score - rivals[0] < self.margin:
            return None
        return IntentMatch(intent, round(score, 4), "embedding", text)

    def needs_vector(self, text: str, candidates: Collection[str]) -> bool:
        """Whether `nearest` could change the answer: not when nothing is a candidate or the
        text matched exactly."""
        return bool(set(candidates) & self.intents) and self.exact(text, candidates) is None
