"""The pieces a reply is spoken in. Text arrives in pieces of any size (a template's whole
answer at once, an LLM's tokens); it is spoken sentence by sentence, so the first sentence is
heard while the rest is still being made, and a turn's first piece may be a clause (up to a
comma after a few words) so an LLM's answer starts sooner still. The phrasebook keys its audio
by the same sentences (`split`), so a template's or cached answer's audio made ahead is found."""

from __future__ import annotations

import re

# A sentence ends at . ! or ? followed by a space (so "3.5" and "e.g." inside stay), or at a
# line break.
_END = re.compile(r"(?<=[.!?])\s+|\n+")
_CLAUSE = re.compile(r"(?<=[,;:])\s+")
MIN_CLAUSE_WORDS = 4


def normalize(text: str) -> str:
    """The key a piece of speech is known by: its words, single-spaced."""
    return " ".join(text.split())


def split(text: str) -> list[str]:
    """Whole text into the sentences it is spoken in."""
    return [normalize(s) for s in _END.split(text) if s.strip()]


class SentenceBuffer:
    """Gathers one turn's text and gives out the pieces ready to speak."""

    def __init__(self, first_clause: bool = True) -> None:
        self._text = ""
        self._first_clause = first_clause
        self._given = 0

    def add(self, piece: str) -> list[str]:
        self._text += piece
        parts = _END.split(self._text)
        ready, self._text = parts[:-1], parts[-1]
        # A clause goes early only from text still streaming: a sentence already whole (a
        # template's answer, all at once) waits for its end and is spoken, and found, whole.
        whole = self._text.rstrip().endswith((".", "!", "?"))
        if not ready and self._first_clause and self._given == 0 and not whole:
            clause = _CLAUSE.split(self._text, maxsplit=1)
            if len(clause) == 2 and len(clause[0].split()) >= MIN_CLAUSE_WORDS:
                ready, self._text = [clause[0]], clause[1]
        out = [normalize(p) for p in ready if p.strip()]
        self._given += len(out)
        return out

    def flush(self) -> list[str]:
        rest, self._text = normalize(self._text), ""
        if not rest:
            return []
        self._given += 1
        return [rest]
