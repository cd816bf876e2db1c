"""The quality score of one answer, 0 to 100, from parts that can each be explained.

- **relevance**: does the answer speak to the question? The cosine similarity of their
  embeddings (the shared all-MiniLM-L6-v2), through a logistic curve centred where right and
  wrong answers to CLINC150 questions part (bench/quality_score.py).
- **grounding**, when the answer was made from retrieved text: does the retrieved text support
  it? The best similarity of the answer to a passage, and how many of the answer's numbers and
  content words the passages contain (a made-up fee or hour has no support).
- **speech**: is it fit to be spoken? Penalties for markdown, links, a length outside 2 to 60
  words, and repeated phrases.
- **consistency**: 0 when the answer says the opposite of the passage sentence closest to it
  (a negation or an antonym such as open / closed) or answers the other side of the question
  ("open" for "close"), else 1 (contradiction.py). Embeddings cannot see either: the wrong
  answer is as close to the question and the passages as the right one. A contradicted
  answer's score is also capped at CONTRADICTED_CAP: a weighted part alone would leave "we do
  not accept credit cards" at 80.
- **intent**, for a template answer (quick responses): how sure the match of the caller's words
  to the template's intent was (1 for an exact example or a rule, else the similarity to the
  nearest example). A template is right when its intent is; question-answer similarity alone
  underrates small talk ("Thanks a lot" / "You're welcome!"), and a repeat of the last answer
  ("Say that again?") by design has nothing in common with the question.

Fallbacks and timeouts are capped low: the caller did not get an answer. Everything here is
pure: vectors come from the caller.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from voice_agent.quality.contradiction import objections
from voice_agent.quality.lexicon import FILLER_WORDS, numbers, words
from voice_agent.types import Vector

# Relevance: logistic over question-answer cosine. Right and wrong answers part around 0.25
# on CLINC150 (bench/quality_score.py prints both distributions).
RELEVANCE_CENTRE = 0.25
RELEVANCE_WIDTH = 0.07
# Grounding: an answer sentence this similar to a passage counts as fully supported.
GROUNDED_SIMILARITY = 0.7
WEIGHTS_WITH_CONTEXT = {"relevance": 0.4, "grounding": 0.25, "consistency": 0.2, "speech": 0.15}
WEIGHTS_WITHOUT_CONTEXT = {"relevance": 0.6, "consistency": 0.2, "speech": 0.2}
WEIGHTS_TEMPLATE = {"intent": 0.5, "relevance": 0.25, "speech": 0.25}
CAPS = {"fallback": 20.0, "timeout": 10.0}  # the most a non-answer can score
# The most an answer its own passages contradict can score, however relevant it sounds: below
# the cache's quality gate (60) and the alerts' baseline, so the tracker and its reports see it
# as wrong. (The cache tier refuses such answers by the same objections before scoring.)
CONTRADICTED_CAP = 40.0
MAX_SPOKEN_WORDS = 60

# Units a quantity is told by; plural and singular are one unit.
UNITS = {
    **{u: u for u in ("am", "pm", "percent")},
    **{f"{u}s": u for u in ("mile", "minute", "hour", "day", "week", "month", "year", "dollar")},
    **{u: u for u in ("mile", "minute", "hour", "day", "week", "month", "year", "dollar")},
}
_GLUED_UNIT = re.compile(r"(\d)(am|pm)\b")
_MARKDOWN = re.compile(r"(\*\*|__|`|^#|^\s*[-*] |\|)", re.MULTILINE)
_URL = re.compile(r"https?://|www\.", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class QualityScore:
    score: float
    parts: dict[str, float]
    notes: list[str] = field(default_factory=list)


def relevance(question: Vector, answer: Vector) -> float:
    cosine = float(np.dot(question, answer))
    return 1.0 / (1.0 + math.exp(-(cosine - RELEVANCE_CENTRE) / RELEVANCE_WIDTH))


def quantities(text: str) -> set[str]:
    """The numbers of a text, each with its unit when one follows ("9 pm", "10 miles"): the
    passages must hold the quantity, not only the number ("9 AM" does not support "9 PM")."""
    said = words(_GLUED_UNIT.sub(r"\1 \2", text.lower()))
    found = set()
    for index, word in enumerate(said):
        if word in numbers(word):
            unit = said[index + 1] if index + 1 < len(said) else ""
            found.add(f"{word} {UNITS[unit]}" if unit in UNITS else word)
    return found


def grounding(answer: str, answer_vector: Vector, passages: Sequence[tuple[str, Vector]]) -> float:
    """0 to 1: half from the answer's closeness to its best passage, half from how many of
    its numbers and content words appear in the passages."""
    if not passages:
        return 0.0
    best = max(float(np.dot(answer_vector, v)) for _, v in passages)
    closeness = min(1.0, max(0.0, best / GROUNDED_SIMILARITY))
    context = " ".join(text for text, _ in passages)
    known = set(words(context)) | quantities(context)
    facts = quantities(answer)
    content = {w for w in words(answer) if w not in FILLER_WORDS and not w.isdigit()}
    content -= {unit for fact in facts for unit in fact.split()[1:]}
    checks = [n in known for n in facts] + [w in known for w in content]
    support = sum(checks) / len(checks) if checks else 1.0
    # A number the passages do not contain is a made-up fact: it weighs double.
    missing_numbers = sum(n not in known for n in facts)
    support = max(0.0, support - 0.25 * missing_numbers)
    return 0.5 * closeness + 0.5 * support


def speech(answer: str) -> tuple[float, list[str]]:
    notes = []
    score = 1.0
    count = len(answer.split())
    if _MARKDOWN.search(answer):
        score -= 0.4
        notes.append("markdown")
    if _URL.search(answer):
        score -= 0.4
        notes.append("link")
    if count < 2:
        score -= 0.5
        notes.append("too short")
    elif count > MAX_SPOKEN_WORDS:
        score -= 0.3
        notes.append(f"too long ({count} words)")
    said = words(answer)
    trigrams = [tuple(said[i : i + 3]) for i in range(len(said) - 2)]
    if len(trigrams) != len(set(trigrams)):
        score -= 0.3
        notes.append("repeats itself")
    return max(0.0, score), notes


def score_answer(
    answer: str,
    question_vector: Vector,
    answer_vector: Vector,
    passages: Sequence[tuple[str, Vector]] | None = None,
    outcome: str = "answer",
    intent_score: float | None = None,
    question: str = "",
) -> QualityScore:
    """`passages` (text, vector) when the answer was generated from retrieved text; `outcome`
    is "answer", "fallback" or "timeout"; `intent_score` for a template answer; `question`
    (its text) for the consistency part."""
    parts = {"relevance": relevance(question_vector, answer_vector)}
    fit, notes = speech(answer)
    parts["speech"] = fit
    found = objections(question, answer, [text for text, _ in passages or ()])
    parts["consistency"] = 0.0 if found else 1.0
    notes.extend(found)
    if intent_score is not None:
        parts["intent"] = min(1.0, max(0.0, intent_score))
        weights = WEIGHTS_TEMPLATE
    elif passages is not None:
        parts["grounding"] = grounding(answer, answer_vector, passages)
        weights = WEIGHTS_WITH_CONTEXT
    else:
        weights = WEIGHTS_WITHOUT_CONTEXT
    total = 100.0 * sum(weights[name] * parts[name] for name in weights)
    if found and "consistency" in weights:
        total = min(total, CONTRADICTED_CAP)
    if outcome in CAPS:
        total = min(total, CAPS[outcome])
        notes.append(f"{outcome}: capped at {CAPS[outcome]:.0f}")
    return QualityScore(round(total, 1), {k: round(v, 3) for k, v in parts.items()}, notes)
