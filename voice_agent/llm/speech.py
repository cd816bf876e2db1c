"""Turns a model's token stream into text fit to be spoken: no markdown, lists or links, and
no more than a set number of sentences.

It holds back as little as it can, so the first word goes out with the first token: a partial
word made only of letters is sent at once, unless it could still grow into a link or a
leading label ("Answer:"); anything else waits for the whitespace that ends its word.
"""

from __future__ import annotations

import re

_WHITESPACE = re.compile(r"\s+")
_URL = re.compile(r"^(?:https?://|www\.)\S*$", re.IGNORECASE)
_MARKUP = re.compile(r"[*_`#>|~\[\]{}]+")
_LIST_MARKER = re.compile(r"^(?:[-•+]|\d{1,2}[.)])$")
_SENTENCE_END = re.compile(r"[.!?][\"')]*$")
_LETTERS = re.compile(r"^[A-Za-z]+$")
_LABELS = ("answer:", "assistant:", "agent:", "response:")
_LINK_STARTS = ("https://", "www.")


class SpeechFilter:
    """Feed tokens in, get speakable text out. `done` turns true once `max_sentences`
    sentences have been emitted; the caller should then stop the model."""

    def __init__(self, max_sentences: int) -> None:
        self._max_sentences = max_sentences
        self._sentences = 0
        self._pending = ""  # raw text not yet consumed
        self._sent_of_word = ""  # the part of the current word already sent
        self._at_line_start = True
        self._emitted_any = False
        self.done = False

    def feed(self, token: str) -> str:
        if self.done:
            return ""
        self._pending += token
        return self._drain(final=False)

    def flush(self) -> str:
        if self.done:
            return ""
        return self._drain(final=True)

    def _drain(self, final: bool) -> str:
        out: list[str] = []
        while not self.done:
            gap = _WHITESPACE.search(self._pending)
            if gap is None:
                break
            word = self._pending[: gap.start()]
            self._pending = self._pending[gap.end() :]
            if word:
                out.append(self._complete(word))
            if "\n" in gap.group():
                self._at_line_start = True
        if not self.done and self._pending:
            if final:
                out.append(self._complete(self._pending))
                self._pending = ""
            elif self._may_send_early(self._pending):
                out.append(self._partial(self._pending))
        return "".join(out)

    def _may_send_early(self, partial: str) -> bool:
        if not _LETTERS.match(partial):
            return False
        lowered = partial.lower()
        if any(start.startswith(lowered) for start in _LINK_STARTS):
            return False
        return self._emitted_any or not any(label.startswith(lowered) for label in _LABELS)

    def _partial(self, partial: str) -> str:
        fresh = partial[len(self._sent_of_word) :]
        if not fresh:
            return ""
        prefix = self._space_before() if not self._sent_of_word else ""
        self._sent_of_word = partial
        self._emitted_any = True
        return prefix + fresh

    def _complete(self, word: str) -> str:
        at_line_start, self._at_line_start = self._at_line_start, False
        sent, self._sent_of_word = self._sent_of_word, ""
        if not self._emitted_any and word.lower() in _LABELS:
            return ""
        if _URL.match(word):
            spoken = "our website" + _trailing_punctuation(word)
        else:
            spoken = _MARKUP.sub("", word)
            if at_line_start and _LIST_MARKER.match(spoken):
                return ""
        if not spoken:
            return ""
        if _SENTENCE_END.search(spoken):
            self._sentences += 1
            self.done = self._sentences >= self._max_sentences
        if sent:
            # The word's first letters already went out; send the rest of it.
            return spoken[len(sent) :] if spoken.startswith(sent) else ""
        prefix = self._space_before()
        self._emitted_any = True
        return prefix + spoken

    def _space_before(self) -> str:
        return " " if self._emitted_any else ""


def _trailing_punctuation(word: str) -> str:
    match = re.search(r"[.!?,;:]+$", word)
    return match.group() if match else ""
