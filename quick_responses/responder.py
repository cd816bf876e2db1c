"""Decides whether a template answers an utterance, cheapest step first:

1. a rule for what is not speech: empty text, noise markers, fillers alone -> unintelligible;
2. the normalized text looked up among the pack's examples;
3. the nearest example by embedding, accepted above the intent's threshold and by a margin
   over the next intent;
4. guards, which send an utterance that carries more than its intent on to the next tier.

The recognized intent is reported even when a guard stops the template, so a flow can still
act on "yes" in "yes, and what's the fee?". Pure: the caller supplies the embedding.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Literal

from quick_responses import guards
from quick_responses.head import OTHER, IntentHead
from quick_responses.intents import Vector, normalize, ranked_intents
from quick_responses.pack import NO_LAST_TURN, Pack, pick_variant, render

Kind = Literal["rule", "exact", "embedding", "none"]

UNINTELLIGIBLE = "unintelligible"
_NOISE = re.compile(r"^\W*[\(\[<][^\)\]>]*[\)\]>]\W*$")
_FILLERS = frozenset({"um", "uh", "umm", "uhh", "hmm", "hm", "mm", "mmm", "er", "erm", "ah"})


@dataclass(frozen=True, slots=True)
class Candidate:
    intent: str
    score: float
    threshold: float
    example: str


@dataclass(frozen=True, slots=True)
class QuickMatch:
    intent: str
    score: float
    template: str  # the first response variant for the state, unrendered


@dataclass(frozen=True, slots=True)
class QuickDecision:
    intent: str | None  # the small-talk intent recognized, if any
    answer: bool  # answer with a template
    score: float = 0.0
    kind: Kind = "none"
    example: str = ""
    guard: str | None = None  # why a recognized intent is not answered
    candidates: tuple[Candidate, ...] = ()  # the closest intents, best first (for explain)
    predicted: str | None = None  # the head's class ("other" for a real request), if a head


class QuickResponder:
    def __init__(
        self,
        pack: Pack,
        vectors: Vector,
        max_unknown_words: int | None = None,
        head: IntentHead | None = None,
    ) -> None:
        """With a `head`, thresholds apply to its probabilities; without, to the similarity
        of the nearest example (with the pack's margin over the next intent)."""
        self.pack = pack
        self.head = head
        self._rows = [(i.name, e) for i in pack.intents.values() for e in i.examples]
        if len(self._rows) != len(vectors):
            raise ValueError("one vector per example")
        self._vectors = vectors
        self._exact = {normalize(example): intent for intent, example in self._rows}
        self._known = guards.vocabulary(e for _, e in self._rows)
        self._intent_words = {i.name: guards.vocabulary(i.examples) for i in pack.intents.values()}
        # Guards an intent's own examples never trip, derived from them: a question whose every
        # example speaks to the agent must speak to it; one none of whose examples ends on the
        # caller ("tell me your name" names the agent's) must not.
        self._must_address = {
            i.name
            for i in pack.intents.values()
            if i.question and all(guards.addresses_the_agent(e) for e in i.examples)
        }
        self._not_about_caller = {
            i.name
            for i in pack.intents.values()
            if i.question and not any(guards.caller_as_object(e) for e in i.examples)
        }
        self.max_unknown = (
            pack.max_unknown_words if max_unknown_words is None else max_unknown_words
        )

    @classmethod
    def build(
        cls,
        pack: Pack,
        embed_many: Callable[[Sequence[str]], Vector],
        max_unknown_words: int | None = None,
        head: IntentHead | None = None,
    ) -> QuickResponder:
        texts = [e for i in pack.intents.values() for e in i.examples]
        return cls(pack, embed_many(texts), max_unknown_words, head)

    def _rule(self, text: str) -> bool:
        words = normalize(text).split()
        return not words or bool(_NOISE.match(text.strip())) or set(words) <= _FILLERS

    def needs_vector(self, text: str) -> bool:
        """Whether `decide` needs the embedding: not for noise or an exact example."""
        return not self._rule(text) and normalize(text) not in self._exact

    def _allowed(self, intent: str, allowed: Collection[str] | None) -> bool:
        return allowed is None or intent in allowed

    def decide(
        self, text: str, vector: Vector | None = None, allowed: Collection[str] | None = None
    ) -> QuickDecision:
        """`allowed` limits which intents may answer (a state's choice); None allows all."""
        if self._rule(text) and UNINTELLIGIBLE in self.pack.intents:
            return self._final(UNINTELLIGIBLE, 1.0, "rule", text, None, allowed, ())
        key = normalize(text)
        if key in self._exact:
            return self._final(self._exact[key], 1.0, "exact", key, None, allowed, ())
        if vector is None or not self._rows:
            return QuickDecision(None, False)
        candidates = self._ranked(vector)
        if self.head is not None:
            return self._by_head(text, vector, allowed, candidates)
        best = candidates[0]
        runner_up = candidates[1].score if len(candidates) > 1 else -1.0
        if best.score < best.threshold or best.score - runner_up < self.pack.margin:
            return QuickDecision(None, False, best.score, "none", best.example, None, candidates)
        guard = self._guard(text, best.intent)
        return self._final(
            best.intent, best.score, "embedding", best.example, guard, allowed, candidates
        )

    def _by_head(
        self,
        text: str,
        vector: Vector,
        allowed: Collection[str] | None,
        candidates: tuple[Candidate, ...],
    ) -> QuickDecision:
        assert self.head is not None
        intent, probability = self.head.best(vector)
        if intent == OTHER or intent not in self.pack.intents:
            return QuickDecision(None, False, probability, "none", "", None, candidates, intent)
        spec = self.pack.intents[intent]
        nearest = next((c.example for c in candidates if c.intent == intent), "")
        if probability < spec.threshold:
            return QuickDecision(
                None, False, probability, "none", nearest, None, candidates, intent
            )
        guard = self._guard(text, intent)
        decision = self._final(
            intent, round(probability, 4), "embedding", nearest, guard, allowed, candidates
        )
        return replace(decision, predicted=intent)

    def _final(
        self,
        intent: str,
        score: float,
        kind: Kind,
        example: str,
        guard: str | None,
        allowed: Collection[str] | None,
        candidates: tuple[Candidate, ...],
    ) -> QuickDecision:
        if guard is None and not self._allowed(intent, allowed):
            guard = "not allowed in this state"
        return QuickDecision(intent, guard is None, score, kind, example, guard, candidates)

    def _ranked(self, vector: Vector, top: int = 3) -> tuple[Candidate, ...]:
        """The closest intents by their nearest example (for explain, and the scorer when
        there is no head)."""
        ranked = ranked_intents(self._rows, self._vectors @ vector)[:top]
        return tuple(
            Candidate(i, round(s, 4), self.pack.intents[i].threshold, e) for i, s, e in ranked
        )

    def _guard(self, text: str, intent: str) -> str | None:
        spec = self.pack.intents[intent]
        return (
            guards.digits(text)
            or guards.compound(text, self._known, lambda part: normalize(part) in self._exact)
            or (
                guards.about_the_caller(text, self._intent_words[intent]) if spec.question else None
            )
            or (guards.unaddressed(text) if intent in self._must_address else None)
            or (guards.caller_as_object(text) if intent in self._not_about_caller else None)
            or guards.question(text, self._intent_words[intent], spec.question)
            or guards.extra_content(text, self._known, self.max_unknown)
        )

    def match(
        self,
        text: str,
        vector: Vector | None = None,
        state: str | None = None,
        allowed: Collection[str] | None = None,
    ) -> QuickMatch | None:
        """The intent, its score and its template when a template should answer `text`
        (in `state`, whose overrides apply), else None."""
        decision = self.decide(text, vector, allowed)
        if not decision.answer or decision.intent is None:
            return None
        template = self.pack.responses(decision.intent, state)[0]
        return QuickMatch(decision.intent, decision.score, template)

    def reply(
        self,
        decision: QuickDecision,
        state: str | None,
        context: Mapping[str, str],
        recent: Sequence[str],
        last_turn: str | None,
    ) -> tuple[str, str]:
        """(text to say, template used) for a decision that answers. `recent` is what the
        agent said lately (to vary the wording); `last_turn`, its previous turn."""
        assert decision.intent is not None
        spec = self.pack.intents[decision.intent]
        variants = [render(r, context) for r in self.pack.responses(spec.name, state)]
        chosen = pick_variant(variants, recent)
        if spec.repeat_last:
            return (f"{chosen} {last_turn}" if last_turn else NO_LAST_TURN), chosen
        return chosen, chosen
