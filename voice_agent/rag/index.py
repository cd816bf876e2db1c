"""The hybrid index over knowledge-base chunks: BM25 (bm25s) and dense vectors, fused by RRF.

An index is an immutable snapshot; ingesting documents builds a new one and swaps it in, so a
turn that is retrieving never sees a half-built index.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import bm25s
import numpy as np

from voice_agent.rag.chunking import Chunk
from voice_agent.rag.encoder import Vectors
from voice_agent.rag.fusion import reciprocal_rank_fusion

# How deep each ranking goes before fusion; fusion then keeps the top k.
CANDIDATES_PER_RANKING = 20

_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def _stemmer() -> Any:
    try:
        import Stemmer
    except ImportError:
        return None
    return Stemmer.Stemmer("english")


_STEMMER = _stemmer()


def tokenize(text: str) -> list[str]:
    """Lower-cased word tokens with English stop words removed and, when PyStemmer is
    installed, stemmed (so "refills" matches "refill")."""
    words = [w for w in _TOKEN.findall(text.lower()) if w not in _STOPWORDS]
    if _STEMMER is not None:
        return list(_STEMMER.stemWords(words))
    return words


# Function words, including the ones callers open questions with ("can you", "do I", "what
# is my"), which bm25s's short Lucene list keeps and which then outweigh the topic words.
_STOPWORDS = frozenset(
    """a about above after again all am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from
    further had has have having he her here hers herself him himself his how i if in into
    is it its itself just me more most my myself no nor not now of off on once only or
    other our ours ourselves out over own same she should so some such than that the their
    theirs them themselves then there these they this those through to too under until up
    very was we were what when where which while who whom why will with would you your
    yours yourself yourselves i'm i'd i've you're we're it's what's there's can't don't
    please hi hello hey thanks thank okay ok yes yeah also get got want need like know
    tell""".split()
)


@dataclass(frozen=True, slots=True)
class Hit:
    chunk: Chunk
    score: float


class KnowledgeIndex:
    def __init__(self, chunks: Sequence[Chunk], vectors: Vectors, version: int) -> None:
        if len(chunks) != len(vectors):
            raise ValueError("one vector per chunk")
        if not chunks:
            raise ValueError("an index needs at least one chunk")
        self.chunks = list(chunks)
        self.vectors = vectors
        self.version = version
        self._bm25 = bm25s.BM25()
        # An empty token list would break bm25s; a placeholder token matches nothing real.
        corpus = [tokenize(c.indexed_text) or ["_"] for c in self.chunks]
        self._bm25.index(corpus, show_progress=False)
        self._vocab = set().union(*map(set, corpus))

    def bm25_ranking(self, query: str, depth: int = CANDIDATES_PER_RANKING) -> list[int]:
        tokens = [t for t in tokenize(query) if t in self._vocab]
        if not tokens:
            return []
        scores = self._bm25.get_scores(tokens)
        order = np.argsort(-scores, kind="stable")[:depth]
        return [int(i) for i in order if scores[i] > 0]

    def dense_ranking(
        self, query_vector: Vectors, depth: int = CANDIDATES_PER_RANKING
    ) -> list[int]:
        similarities = self.vectors @ query_vector
        order = np.argsort(-similarities, kind="stable")[:depth]
        return [int(i) for i in order]

    def search(self, query: str, query_vector: Vectors | None, top_k: int) -> list[Hit]:
        """BM25 and dense rankings fused; BM25 alone without the query's vector."""
        rankings = [self.bm25_ranking(query)]
        if query_vector is not None:
            rankings.append(self.dense_ranking(query_vector))
        fused = reciprocal_rank_fusion(rankings, top=top_k)
        return [Hit(self.chunks[i], score) for i, score in fused]
