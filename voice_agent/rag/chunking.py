"""Splits documents into retrievable chunks of whole paragraphs (or sentences, when a paragraph
is long), each small enough to put several in a short prompt."""

from __future__ import annotations

import re
from dataclasses import dataclass

from voice_agent.rag.documents import Document

_SENTENCE_SPLIT = re.compile(r"(?<=[.!?])\s+")
_QA_START = re.compile(r"^Q:\s*", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Chunk:
    doc_id: str
    title: str
    text: str

    @property
    def indexed_text(self) -> str:
        """What retrieval scores: the title carries the topic that the text may leave implicit."""
        return f"{self.title}. {self.text}"


def _units(text: str, max_words: int) -> list[str]:
    units: list[str] = []
    for paragraph in re.split(r"\n\s*\n", text):
        paragraph = " ".join(paragraph.split())
        if not paragraph:
            continue
        if len(paragraph.split()) <= max_words:
            units.append(paragraph)
        else:
            units.extend(s for s in _SENTENCE_SPLIT.split(paragraph) if s)
    return units


def chunk_document(doc: Document, max_words: int = 60) -> list[Chunk]:
    """Packs consecutive paragraphs into chunks of at most `max_words` words (a longer single
    sentence becomes a chunk of its own). Question/answer pairs always stay alone."""
    chunks: list[Chunk] = []
    current: list[str] = []
    size = 0

    def close() -> None:
        nonlocal current, size
        if current:
            chunks.append(Chunk(doc.id, doc.title, " ".join(current)))
        current, size = [], 0

    for unit in _units(doc.text, max_words):
        words = len(unit.split())
        if _QA_START.match(unit):
            close()
            chunks.append(Chunk(doc.id, doc.title, unit))
            continue
        if size + words > max_words:
            close()
        current.append(unit)
        size += words
    close()
    return chunks
