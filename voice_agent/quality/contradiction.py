"""Lexical checks for an answer that says the opposite of its source, or answers a question
next to the one asked. Embeddings miss both: "No, we do not deliver prescriptions" sits as
close to "Yes, we deliver prescriptions free" as a right answer does, and "We open at 9" as
close to "What time do you close?" as "We close at 6" does. Pure functions over text; each
returns why it objects, or None.

- **opposite**: an answer sentence or clause and the passage sentence or clause that shares
  most of its topic words (two at least) differ in negation ("not", "no", "n't"...), use the
  two sides of an antonym pair (open / closed), make the same claim with other numbers, or
  stand under the opposite yes or no.
- **other side**: a question asking when ("what time do you close?") about one side of an
  antonym pair gets an answer that speaks only of the other ("we open at 9").
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from functools import lru_cache

import Stemmer

from voice_agent.quality.lexicon import FILLER_WORDS, negated, numbers, topic_words, words

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
# A negation of a noun ("no minimum order for a delivery") ends at the next preposition; one
# of a verb ("you cannot pay with a credit card") reaches its complements, up to a new clause.
_NOUN_NEGATIONS = frozenset("no none nothing nobody nowhere neither nor without".split())
_CLAUSE_BOUNDARIES = frozenset("that which who but because than if when while and or so".split())
_CLAUSE_MARKS = re.compile(r"[,;:()\u2014]")
_SENTENCE = re.compile(r"(?<=[.!?])\s+")
# Where a sentence's clauses part: "opens at 9 AM on Saturdays and closes at 6 PM" holds two
# claims, and a negation of one is hidden by the other when only whole sentences are compared.
_QA_LABEL = re.compile(r"^[QA]:\s*")  # "A: Yes." in a knowledge base's FAQ
_CLAUSE = re.compile(r"[,;:]\s+|\s+(?:and|but)\s+")
_ASKS_WHEN = re.compile(r"(what time|when)\b", re.IGNORECASE)
# "How late / until when are you open?" is rightly answered with the closing time.
_EITHER_WAY = re.compile(r"\b(late|early|until|till)\b", re.IGNORECASE)
MIN_CLAUSE_WORDS = 3
MIN_SHARED = 2  # topic words an answer sentence must share with a passage sentence
_STEMMER = Stemmer.Stemmer("english")
MIN_PREFIX = 4  # stems this long match when one begins the other ("deliv" / "deliveri")


@dataclass(frozen=True, slots=True)
class _Sentence:
    text: str
    numbers: frozenset[str]
    tokens: tuple[str, ...]
    stems: tuple[str, ...]  # one per token; "" for words that carry no topic
    negated: tuple[bool, ...]  # one per token: inside a negation's reach
    topic: frozenset[str]  # the stems that carry a topic

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
        # pet medications", but not "no minimum order for a delivery" (see _NOUN_NEGATIONS).
        scopes: list[int | None] = []
        scope: int | None = None
        verbal = False
        for index, token in enumerate(tokens):
            if negated(token):
                scope, verbal = index, token not in _NOUN_NEGATIONS
            elif token in _CLAUSE_WORDS and (not verbal or token in _CLAUSE_BOUNDARIES):
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
        return cls(text, numbers(text), tokens, kept, reach, frozenset(s for s in kept if s))

    def negates(self, stems: AbstractSet[str]) -> bool:
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


# The knowledge base's passages come back turn after turn: each sentence is parsed once.
_sentence = lru_cache(maxsize=4096)(_Sentence.of)


def _prefixed(word: str, others: Iterable[str]) -> bool:
    return any(word.startswith(o) or o.startswith(word) for o in others)


def _matching(
    mine: AbstractSet[str], theirs: AbstractSet[str]
) -> tuple[AbstractSet[str], AbstractSet[str]]:
    """The stems of each side that the other side has too: equal, or, both at least
    MIN_PREFIX long, one begins the other."""
    return _matched(mine, theirs), _matched(theirs, mine)


def _matched(mine: AbstractSet[str], theirs: AbstractSet[str]) -> AbstractSet[str]:
    """The stems of `mine` that `theirs` has too (one side of `_matching`)."""
    both = mine & theirs
    if len(both) == len(mine):
        return both
    long_theirs = [b for b in theirs if len(b) >= MIN_PREFIX]
    return both | {
        a for a in mine if len(a) >= MIN_PREFIX and a not in both and _prefixed(a, long_theirs)
    }


def _other(side: str) -> str:
    return "b" if side == "a" else "a"


def _sides(text: str) -> set[tuple[str, int]]:
    return {_SIDES[w] for w in words(text) if w in _SIDES}


def sentences(text: str) -> list[str]:
    return [s for s in _SENTENCE.split(text.strip()) if s]


def clauses(sentence: str) -> list[str]:
    """A sentence's clauses when it has more than one, else none."""
    parts = [c for c in _CLAUSE.split(sentence) if c.strip()]
    # A part of fewer than three words is an item of a list ("cash, debit cards, and credit
    # cards"; "Thanksgiving Day and Christmas Day"), not a claim of its own.
    if len(parts) > 1 and all(len(c.split()) >= MIN_CLAUSE_WORDS for c in parts):
        return parts
    return []


def _clash(said: _Sentence, source: _Sentence) -> str | None:
    """A negation of the shared topic words on one side only, or opposite sides of an antonym
    pair (a negated side turned over: "not open" says what "closed" says); the two at once
    cancel out."""
    mine, theirs = _matching(said.topic, source.topic)
    negation = said.negates(mine) != source.negates(theirs)
    own, other = said.sides, source.sides
    antonym = any((_other(side), pair) in other and (side, pair) not in other for side, pair in own)
    if negation != antonym:
        return "negation" if negation else "antonym"
    # The same claim with other numbers: every topic word of the answer's clause is in the
    # passage's, and neither's numbers contain the other's ("opens at 10" / "opens at 9").
    if (
        not negation
        and mine == said.topic
        and said.numbers
        and source.numbers
        and not (said.numbers <= source.numbers or source.numbers <= said.numbers)
    ):
        return "numbers"
    return None


@dataclass(frozen=True, slots=True)
class _Claim:
    verdict: str | None  # the yes or no it stands under
    sentence: _Sentence
    part_of: int | None  # for a clause, the number of its sentence's claim (see `claims`)


def claims(text: str, first: int = 0) -> list[_Claim]:
    """Each sentence of a text and each of its clauses, with the yes or no it stands under:
    "No. We are closed on Easter" puts "We are closed on Easter" under "no", and so does "No,
    we are closed on Easter". Claims are numbered from `first` (for `part_of`)."""
    out: list[_Claim] = []
    pending: str | None = None
    for sentence in sentences(text):
        said = words(_QA_LABEL.sub("", sentence))
        if said in (["yes"], ["no"]):
            pending = said[0]
            continue
        verdict = said[0] if said and said[0] in ("yes", "no") and "," in sentence else pending
        pending = None
        whole = first + len(out)
        out.append(_Claim(verdict, _sentence(sentence), None))
        out.extend(_Claim(verdict, _sentence(c), whole) for c in clauses(sentence))
    return out


def opposite(answer: str, passages: Iterable[str]) -> str | None:
    """Why an answer sentence says the opposite of the passage sentences closest to it (all
    of those that share the most topic words with it, two at least, must disagree): a clash
    of the words, or a yes where the passage says no ("No. Delivery is free within 5 miles"
    against "Yes. Delivery is free within 5 miles")."""
    source: list[_Claim] = []
    for passage in passages:
        source.extend(claims(passage, first=len(source)))
    for mine in claims(answer):
        said = mine.sentence
        topic = said.topic
        if len(topic) < MIN_SHARED:
            continue
        overlaps = [len(_matched(topic, c.sentence.topic)) for c in source]
        best = max(overlaps, default=0)
        if best < MIN_SHARED:
            continue
        closest = [i for i, n in enumerate(overlaps) if n == best]
        # A clause and its sentence can share as many words with the answer; the clause, the
        # narrower claim, is the one to compare ("opens at 9", not "opens at 9 and closes at 6").
        wider = {source[i].part_of for i in closest}
        closest = [i for i in closest if i not in wider]
        clashes = [
            _clash(said, c.sentence)
            or ("yes or no" if mine.verdict and c.verdict and c.verdict != mine.verdict else None)
            for c in (source[i] for i in closest)
        ]
        if all(clashes):
            return f"{clashes[0]}: {said.text!r} against {source[closest[0]].sentence.text!r}"
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


_FAQ = re.compile(r"Q:\s*(?P<q>[^?]+\?)\s*A:\s*(?P<a>.+?)(?=\s*Q:|$)", re.DOTALL)


def _keywords(question: str) -> set[str]:
    """A question's topic stems, the sides of antonym pairs included ("open", "sunday")."""
    return set(_STEMMER.stemWords(sorted(topic_words(question))))


def _verdict(text: str) -> str | None:
    return next((c.verdict for c in claims(text) if c.verdict), None)


def faq_verdict(question: str, answer: str, passages: Iterable[str]) -> str | None:
    """A yes or no against the knowledge base's own answer to the same question: "No, we
    stay shut on Sundays" when the FAQ pair whose question shares the most topic words with
    the caller's (two at least) answers "Yes."; whatever words the answer uses."""
    said = _verdict(answer)
    if said is None:
        return None
    asked = _keywords(question)
    pairs = [(m["q"], m["a"]) for p in passages for m in _FAQ.finditer(p)]
    scored = [(len(_matched(asked, _keywords(q))), a) for q, a in pairs]
    best = max((n for n, _ in scored), default=0)
    if best < MIN_SHARED:
        return None
    theirs = {_verdict(a) for n, a in scored if n == best}
    if theirs == {"yes" if said == "no" else "no"}:
        return f"yes or no: {said!r} where the knowledge base answers the same question otherwise"
    return None


def objections(question: str, answer: str, passages: Sequence[str] | None) -> list[str]:
    found = [other_side(question, answer)]
    if passages:
        found.append(opposite(answer, passages))
        found.append(faq_verdict(question, answer, passages))
    return [f for f in found if f is not None]
