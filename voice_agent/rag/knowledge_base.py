"""The live knowledge base: its documents, the current index snapshot, and retrieval.

Documents are chunked and embedded once; adding documents embeds only the new chunks and
swaps in a new index. `version` counts ingests; `fingerprint` names the content, so anything
derived from the knowledge base (cached answers) can tell that it is stale, and two processes
serving the same documents agree on it.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence

import numpy as np

from voice_agent.rag.chunking import Chunk, chunk_document
from voice_agent.rag.documents import Document
from voice_agent.rag.encoder import Encoder, Vectors
from voice_agent.rag.index import KnowledgeIndex
from voice_agent.turn import TurnRecord, now
from voice_agent.types import Passage, Vector


class KnowledgeBase:
    def __init__(self, encoder: Encoder, top_k: int) -> None:
        self._encoder = encoder
        self._top_k = top_k
        self._documents: dict[str, Document] = {}
        self._vectors: dict[Chunk, Vectors] = {}
        self._index: KnowledgeIndex | None = None
        self._ingest_lock = asyncio.Lock()
        self.fingerprint = "kb-empty"

    @property
    def version(self) -> int:
        return 0 if self._index is None else self._index.version

    @property
    def documents(self) -> list[Document]:
        return list(self._documents.values())

    @property
    def document_count(self) -> int:
        return len(self._documents)

    @property
    def chunk_count(self) -> int:
        return 0 if self._index is None else len(self._index.chunks)

    def _plan(self, documents: Sequence[Document]) -> tuple[list[Chunk], list[Chunk]]:
        merged = dict(self._documents)
        merged.update((d.id, d) for d in documents)
        chunks = [c for d in merged.values() for c in chunk_document(d)]
        new = [c for c in dict.fromkeys(chunks) if c not in self._vectors]
        return chunks, new

    def _swap_in(self, documents: Sequence[Document], chunks: list[Chunk]) -> KnowledgeIndex:
        self._documents.update((d.id, d) for d in documents)
        live = set(chunks)
        self._vectors = {c: v for c, v in self._vectors.items() if c in live}
        matrix = np.vstack([self._vectors[c] for c in chunks]).astype(np.float32)
        self._index = KnowledgeIndex(chunks, matrix, self.version + 1)
        digest = hashlib.sha256()
        for chunk in sorted(c.indexed_text for c in chunks):
            digest.update(chunk.encode("utf-8") + b"\0")
        self.fingerprint = "kb-" + digest.hexdigest()[:16]
        return self._index

    def load(self, documents: Sequence[Document]) -> KnowledgeIndex:
        """Build at start-up, on the calling thread."""
        chunks, new = self._plan(documents)
        if new:
            vectors = self._encoder.encode_sync([c.indexed_text for c in new])
            self._vectors.update(zip(new, vectors, strict=True))
        return self._swap_in(documents, chunks)

    async def add(self, documents: Sequence[Document]) -> KnowledgeIndex:
        """Add or replace documents (same id replaces) while calls go on."""
        async with self._ingest_lock:
            chunks, new = self._plan(documents)
            if new:
                vectors = await self._encoder.encode_many([c.indexed_text for c in new])
                self._vectors.update(zip(new, vectors, strict=True))
            return await asyncio.to_thread(self._swap_in, documents, chunks)

    async def retrieve(
        self,
        query: str,
        record: TurnRecord | None = None,
        vector: Vector | None = None,
        lexical_only: bool = False,
    ) -> list[Passage]:
        """`vector` is the query's embedding when the caller already has it (intent matching
        embeds the utterance first); otherwise it is computed here, unless `lexical_only`
        (BM25 alone: the encoder is too slow for this turn)."""
        index = self._index
        if index is None:
            return []
        if vector is None and not lexical_only:
            started = now()
            vector = await self._encoder.embed(query)
            if record is not None:
                record.add_duration("embedding", started)
        started = now()
        hits = await asyncio.to_thread(index.search, query, vector, self._top_k)
        if record is not None:
            record.add_duration("retrieval", started)
        return [Passage(h.chunk.doc_id, h.chunk.title, h.chunk.text, h.score) for h in hits]
