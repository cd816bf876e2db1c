"""Whether a turn did what its step expected: pure, one readable line per thing that did not
hold, saying what was expected and what came."""

from __future__ import annotations

import re

from voice_agent.scenarios.model import Expect
from voice_agent.scenarios.outcome import Turn


def judge(expect: Expect, turn: Turn) -> list[str]:
    failures = [f"error frame: {error}" for error in turn.errors]
    if expect.interrupted:
        if not turn.interrupted:
            failures.append(
                "expected the answer to stop when the caller talked over it, but it ended"
            )
        return failures
    if expect.no_reply:
        if turn.replied:
            failures.append(f"expected no reply, got {turn.source}: {turn.text!r}")
        return failures
    if not turn.replied:
        return [*failures, "no reply" + (f" (the call ended: {turn.ended})" if turn.ended else "")]
    failures += _words(expect, turn.text)
    failures += _facts(expect, turn)
    failures += _quality(expect, turn)
    return failures


def said(words: str, text: str) -> bool:
    """Whether `words` are in `text` as words, in any case: "no" is not in "know"."""
    return re.search(rf"(?<!\w){re.escape(words)}(?!\w)", text, re.I) is not None


def _words(expect: Expect, text: str) -> list[str]:
    failures = []
    for words in Expect.words(expect.says):
        if not said(words, text):
            failures.append(f"expected the answer to say {words!r}, got {text!r}")
    for words in Expect.words(expect.not_says):
        if said(words, text):
            failures.append(f"expected the answer not to say {words!r}, got {text!r}")
    if expect.matches is not None and not re.search(expect.matches, text, re.I):
        failures.append(f"expected the answer to match /{expect.matches}/, got {text!r}")
    if expect.not_matches is not None and re.search(expect.not_matches, text, re.I):
        failures.append(f"expected the answer not to match /{expect.not_matches}/, got {text!r}")
    return failures


def _facts(expect: Expect, turn: Turn) -> list[str]:
    failures = []
    tiers = [expect.tier] if isinstance(expect.tier, str) else list(expect.tier or [])
    if tiers and turn.source not in tiers:
        failures.append(f"expected it answered by {' or '.join(tiers)}, got {turn.source}")
    if expect.state is not None and turn.state != expect.state:
        failures.append(f"expected state {expect.state}, got {turn.state}")
    action = (turn.action or {}).get("action")
    if expect.action is not None and action != expect.action:
        failures.append(f"expected action {expect.action}, got {action or 'none'}")
    if expect.action_to is not None and (turn.action or {}).get("to") != expect.action_to:
        failures.append(f"expected a transfer to {expect.action_to}, got {turn.action}")
    if expect.no_action and action in ("transfer", "hangup"):
        failures.append(f"expected the call to go on, got action {action}")
    budget = expect.first_word_ms
    if budget is not None and (turn.first_word_ms is None or turn.first_word_ms > budget):
        measured = "none" if turn.first_word_ms is None else f"{turn.first_word_ms:.0f} ms"
        failures.append(f"expected the first word within {budget:.0f} ms, got {measured}")
    return failures


def _quality(expect: Expect, turn: Turn) -> list[str]:
    failures = []
    if expect.min_quality is not None:
        if turn.quality is None:
            failures.append(
                "expected a quality score, but the service did not score this turn" + _why(turn)
            )
        elif (score := float(turn.quality["score"])) < expect.min_quality:
            parts = ", ".join(f"{k} {v}" for k, v in turn.quality.get("parts", {}).items())
            failures.append(
                f"expected quality at least {expect.min_quality:g}, got {score:g} ({parts})"
            )
    if expect.no_contradiction:
        if turn.contradicted is None:
            failures.append("could not check the answer against the knowledge base" + _why(turn))
        elif turn.contradicted:
            notes = "; ".join(turn.knowledge_notes)
            failures.append(f"the answer contradicts the knowledge base: {turn.text!r} ({notes})")
    return failures


def _why(turn: Turn) -> str:
    return f" ({'; '.join(turn.problems)})" if turn.problems else ""
