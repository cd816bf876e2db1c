"""Lexical checks for an answer that says the opposite of its source, or answers a question
next to the one asked. Embeddings miss both: "No, we do not deliver prescriptions" sits as
close to "Yes, we deliver prescriptions free" as a right answer does, and "We open at 9" as
close to "What time do you close?" as "We close at 6" does. Pure functions over text; each
returns why it objects, or None.

- **opposite**: an answer sentence and the passage sentence that shares most of its topic
  words (two at least) differ in negation ("not", "no", "n't"...) or use the two sides of an
  antonym pair (open / closed).
- **other side**: a question asking when ("what time do you close?") about one side of an
  antonym pair gets an answer that speaks only of the other ("we open at 9").
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import Stemmer

from voice_agent.cache_guards import FILLER_WORDS, negated, words

# Word families whose two sides answer different questions, or state opposite facts.
_SIDES: dict[str, tuple[str, int]] = {}
for pair, (one, other) in enumerate(
    (
        ({"open", "opens", "opened", "opening"}, {"close", "closes", "closed", "closing"}),
        ({"before"}, {"after"}),
        ({"earliest", "earlier"}, {"latest", "later"}),
        ({"accept", "accepts", "accepted"}, {"decline", "declines", "declined", "refuse"}),
        ({"available"}, {"unavailable"}),
    )
):
    _SIDES.update({w: ("a", pair) for w in one})
    _SIDES.update({w: ("b", pair) for w in other})

# Words that start another clause or phrase: a negation's reach ends there.
_CLAUSE_WORDS = frozenset(
    "for that which who but because with than if when while and or so to at on in by".split()
)
_CLAUSE_MARKS = re.compile(r"[,;:()\u2014]")
_SENTENCE = re.compile(r"(?<=[.!?])\s+")
_ASKS_WHEN = re.compile(r"(what time|when)\b", re.IGNORECASE)
# "How late / until when are you open?" is rightly answered with the closing time.
_EITHER_WAY = re.compile(r"\b(late|early|until|till)\b", re.IGNORECASE)
MIN_SHARED = 2  # topic words an answer sentence must share with a passage sentence
_STEMMER = Stemmer.Stemmer("english")
MIN_PREFIX = 4  # stems this long match when one begins the other ("deliv" / "deliveri")


@dataclass(frozen=True, slots=True)
class _Sentence:
    text: str
    tokens: tuple[str, ...]
    stems: tuple[str, ...]  # one per token; "" for words that carry no topic
    negated: tuple[bool, ...]  # one per token: inside a negation's reach

    @classmethod
    def of(cls, text: str) -> _Sentence:
        # Punctuation inside a sentence ends a negation's reach as a clause word does.
        tokens = tuple(words(_CLAUSE_MARKS.sub(" and ", text)))
        topical = [
            w.removesuffix("'s")
            if w not in FILLER_WORDS and w not in _SIDES and not negated(w) and not w.isdigit()
            else ""
            for w in tokens
        ]
        stems = tuple(_STEMMER.stemWords(topical))
        # A negation reaches the words after it up to the next clause word: "we do not sell
        # pet medications", but not "no minimum order for a delivery".
        scopes: list[int | None] = []
        scope: int | None = None
        for index, token in enumerate(tokens):
            if negated(token):
                scope = index
            elif token in _CLAUSE_WORDS:
                scope = None
            scopes.append(scope)
        # A negation that turns an antonym over ("do not accept" says "refuse") is spent on
        # it: the topic words after it ("credit cards") are what is refused, not negated too.
        spent = {n for n, t in zip(scopes, tokens, strict=True) if n is not None and t in _SIDES}
        reach = tuple(
            n is not None and (t in _SIDES or n not in spent)
            for n, t in zip(scopes, tokens, strict=True)
        )
        kept = tuple(s if t else "" for s, t in zip(stems, topical, strict=True))
        return cls(text, tokens, kept, reach)

    @property
    def topic(self) -> set[str]:
        return {s for s in self.stems if s}

    def negates(self, stems: set[str]) -> bool:
        """Whether a negation reaches one of these topic words."""
        return any(n and s in stems for s, n in zip(self.stems, self.negated, strict=True))

    @property
    def sides(self) -> set[tuple[str, int]]:
        """The antonym sides the sentence takes, a negated one turned over ("not open" takes
        the side of "closed")."""
        return {
            (_other(_SIDES[t][0]) if n else _SIDES[t][0], _SIDES[t][1])
            for t, n in zip(self.tokens, self.negated, strict=True)
            if t in _SIDES
        }


def _same(a: str, b: str) -> bool:
    return a == b or (min(len(a), len(b)) >= MIN_PREFIX and (a.startswith(b) or b.startswith(a)))


def _matching(mine: set[str], theirs: set[str]) -> tuple[set[str], set[str]]:
    """The stems of each side that the other side has too (equal, or one begins the other)."""
    return {a for a in mine if any(_same(a, b) for b in theirs)}, {
        b for b in theirs if any(_same(a, b) for a in mine)
    }


def _other(side: str) -> str:
    return "b" if side == "a" else "a"


def _sides(text: str) -> set[tuple[str, int]]:
    return {_SIDES[w] for w in words(text) if w in _SIDES}


def sentences(text: str) -> list[str]:
    return [s for s in _SENTENCE.split(text.strip()) if s]


def _clash(said: _Sentence, source: _Sentence) -> str | None:
    """A negation of the shared topic words on one side only, or opposite sides of an antonym
    pair (a negated side turned over: "not open" says what "closed" says); the two at once
    cancel out."""
    mine, theirs = _matching(said.topic, source.topic)
    negation = said.negates(mine) != source.negates(theirs)
    own, other = said.sides, source.sides
    antonym = any((_other(side), pair) in other and (side, pair) not in other for side, pair in own)
    if negation == antonym:
        return None
    return "negation" if negation else "antonym"


def opposite(answer: str, passages: Iterable[str]) -> str | None:
    """Why an answer sentence says the opposite of the passage sentences closest to it (all
    of those that share the most topic words with it, two at least, must disagree)."""
    source = [_Sentence.of(s) for p in passages for s in sentences(p)]
    for said in map(_Sentence.of, sentences(answer)):
        topic = said.topic
        if len(topic) < MIN_SHARED:
            continue
        overlaps = [(len(_matching(topic, s.topic)[0]), s) for s in source]
        best = max((n for n, _ in overlaps), default=0)
        if best < MIN_SHARED:
            continue
        closest = [s for n, s in overlaps if n == best]
        clashes = [_clash(said, s) for s in closest]
        if all(clashes):
            return f"{clashes[0]}: {said.text!r} against {closest[0].text!r}"
    return None


def other_side(question: str, answer: str) -> str | None:
    """Why the answer speaks of the other side of what was asked: "We open at 9" to "What
    time do you close?". Only for questions that ask when ("what time", "when"): "Are you
    open on holidays?" is rightly answered "We are closed on holidays"."""
    if not _ASKS_WHEN.match(question.strip()) or _EITHER_WAY.search(question):
        return None
    asked, said = _sides(question), _sides(answer)
    for side, pair in asked:
        if (side, pair) not in said and (_other(side), pair) in said:
            return "answers the other side of the question"
    return None


def objections(question: str, answer: str, passages: Sequence[str] | None) -> list[str]:
    found = [other_side(question, answer)]
    if passages:
        found.append(opposite(answer, passages))
    return [f for f in found if f is not None]
