"""The intent matcher's rules, on hand-made unit vectors."""

from __future__ import annotations

import math

import numpy as np

from quick_responses.intents import IntentMatcher, normalize


def unit(degrees: float) -> np.ndarray:
    radians = math.radians(degrees)
    return np.array([math.cos(radians), math.sin(radians)], dtype=np.float32)


# affirm at 0 degrees, deny at 40, goodbye at 80.
EXAMPLES = {"affirm": ["yes"], "deny": ["no"], "goodbye": ["bye"]}
VECTORS = np.stack([unit(0), unit(40), unit(80)])


def matcher(threshold: float = 0.7, margin: float = 0.05) -> IntentMatcher:
    return IntentMatcher(EXAMPLES, VECTORS, threshold, margin)


def test_normalize_folds_case_and_punctuation() -> None:
    assert normalize("  Yes, PLEASE!! ") == "yes please"
    assert normalize("that's it") == "that's it"


def test_exact_matches_only_among_candidates() -> None:
    m = matcher()
    assert m.exact("YES!", ["affirm"]).intent == "affirm"  # type: ignore[union-attr]
    assert m.exact("yes", ["deny"]) is None
    assert not m.needs_vector("yes", ["affirm"])
    assert m.needs_vector("yes indeed", ["affirm"])
    assert not m.needs_vector("anything", ["unknown_intent"])


def test_nearest_needs_the_threshold() -> None:
    m = matcher(threshold=0.999)  # cos(5 degrees) = 0.996
    assert m.nearest(unit(5), ["affirm", "deny"]) is None
    match = matcher(threshold=0.9).nearest(unit(5), ["affirm", "deny"])
    assert match is not None and match.intent == "affirm" and match.kind == "embedding"


def test_nearest_needs_a_margin_over_an_intent_leading_elsewhere() -> None:
    between = unit(20)  # as close to affirm as to deny
    assert matcher(threshold=0.5).nearest(between, {"affirm": "done", "deny": "ask"}) is None


def test_intents_leading_to_the_same_place_do_not_compete() -> None:
    between = unit(20)
    match = matcher(threshold=0.5).nearest(between, {"affirm": "bye", "deny": "bye"})
    assert match is not None and match.intent in ("affirm", "deny")


def test_a_closer_intent_that_is_not_a_candidate_wins_nothing() -> None:
    assert matcher(threshold=0.5).nearest(unit(78), ["deny"]) is None
