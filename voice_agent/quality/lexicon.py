"""The words that the cache's guards, the quality score and the contradiction checks read an
utterance by: tokens, negations, numbers, and the filler words that carry no topic."""

from __future__ import annotations

import re

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
NEGATION = frozenset(
    """not no never none nothing nobody nowhere neither nor cannot can't won't don't doesn't
    didn't isn't aren't wasn't weren't hasn't haven't hadn't shouldn't wouldn't couldn't
    without""".split()
)
_NUMBER_WORDS = frozenset(
    """zero one two three four five six seven eight nine ten eleven twelve twenty thirty
    forty fifty hundred thousand first second third""".split()
)
# Words that carry no topic: a difference in them does not change the answer.
FILLER_WORDS = frozenset(
    """a an the and or but so if then than that this these those it its i i'm me my mine you
    your yours we our us they them their he she him her his is am are was were be been being
    do does did have has had will would shall should can could may might must to of in on at
    by for with from about as into over up down out off just very really quite too also
    there here now please tell know want need like get got would what when where which who
    how why whats what's hi hello hey thanks thank okay ok um uh well much many some any
    today""".split()
)


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower().replace("\u2019", "'"))  # typographic apostrophe


def negated(text: str) -> bool:
    return any(w in NEGATION or w.endswith("n't") for w in words(text))


def numbers(text: str) -> frozenset[str]:
    return frozenset(w for w in words(text) if w.isdigit() or w in _NUMBER_WORDS)


def topic_words(text: str) -> frozenset[str]:
    return frozenset(
        w for w in words(text) if w not in FILLER_WORDS and w not in NEGATION and not w.isdigit()
    )
