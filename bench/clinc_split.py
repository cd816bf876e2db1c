"""The one split of CLINC150 that every tuning bench uses, so that figures can be reported on
data that tuning never saw, the way a new business meets the service.

- Whole domains are held out: no utterance of theirs, from any of CLINC's own splits, is used
  to train a head or choose a threshold.
- `small_talk` and `meta` hold the intents templates answer, so they cannot be held out whole:
  their utterances (and the out-of-scope ones, which have no domain) are split by example, a
  stable hash of the text deciding which side each falls on.

Tuning reads `train` + `val` of the tuning side; reports read `test` (+ `oos_test`) of both
sides, side by side.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Literal

CLINC = Path(__file__).resolve().parents[2] / "shared" / "data" / "clinc150"
HELD_OUT_DOMAINS = ("banking", "auto_and_commute", "utility")
TUNED_DOMAINS = ("credit_cards", "kitchen_and_dining", "home", "travel", "work")
SPLIT_BY_EXAMPLE = ("small_talk", "meta")
HELD_OUT_SHARE = 0.5  # of the examples split one by one

# CLINC small-talk intent -> the pack intents whose templates answer it correctly.
PACK_INTENTS: dict[str, set[str]] = {
    "greeting": {"greeting", "how_are_you"},  # CLINC's greeting holds "how have you been"
    "goodbye": {"goodbye"},
    "thank_you": {"thanks"},
    "yes": {"affirm"},
    "no": {"deny"},
    "repeat": {"repeat"},
    "are_you_a_bot": {"are_you_a_bot"},
    "what_is_your_name": {"what_is_your_name"},
    "who_made_you": {"who_made_you"},
}

Side = Literal["tuned", "held_out"]
Row = tuple[str, str]  # (text, CLINC intent or "oos")


def domain_of_intent(clinc: Path = CLINC) -> dict[str, str]:
    domains = json.loads((clinc / "domains.json").read_text())
    return {intent: domain for domain, intents in domains.items() for intent in intents}


def side_of(text: str, label: str, domains: dict[str, str]) -> Side:
    domain = domains.get(label)
    if domain in HELD_OUT_DOMAINS:
        return "held_out"
    if domain in TUNED_DOMAINS:
        return "tuned"
    digest = hashlib.sha256(text.strip().lower().encode()).digest()
    return "held_out" if digest[0] < 256 * HELD_OUT_SHARE else "tuned"


def load(clinc: Path = CLINC) -> dict[str, list[Row]]:
    """CLINC's own splits as (text, label) rows, out-of-scope queries labelled "oos"."""
    data = json.loads((clinc / "data_full.json").read_text())
    return {
        name: [(text, "oos" if name.startswith("oos") else intent) for text, intent in rows]
        for name, rows in data.items()
    }


def rows(side: Side, *names: str, clinc: Path = CLINC) -> list[Row]:
    """The rows of CLINC's splits `names` that fall on `side`."""
    domains = domain_of_intent(clinc)
    data = load(clinc)
    return [r for name in names for r in data[name] if side_of(r[0], r[1], domains) == side]
