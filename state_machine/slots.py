"""Reads a slot's value from what the caller said or keyed in."""

from __future__ import annotations

import re

from state_machine.model import Collect

_DIGIT_WORDS = {
    "zero": "0", "oh": "0", "o": "0", "one": "1", "two": "2", "three": "3", "four": "4",
    "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9",
}  # fmt: skip
_REPEATS = {"double": 2, "triple": 3}
_TOKEN = re.compile(r"[a-z]+|\d+")


def spoken_digits(text: str) -> str:
    """The longest run of digits in `text`, digits said as words included: "my number is
    four one two, double seven 9" gives "4127 79" joined as "412779". Words that are not
    digits break a run, so "2 refills for 123456" gives "123456"."""
    runs: list[str] = []
    current: list[str] = []
    repeat = 1
    for token in _TOKEN.findall(text.lower()):
        if token.isdigit():
            current.append(token * repeat)
            repeat = 1
        elif token in _DIGIT_WORDS:
            current.append(_DIGIT_WORDS[token] * repeat)
            repeat = 1
        elif token in _REPEATS:
            repeat = _REPEATS[token]
        else:
            if current:
                runs.append("".join(current))
            current, repeat = [], 1
    if current:
        runs.append("".join(current))
    if not runs:
        return ""
    longest = max(len(r) for r in runs)
    return [r for r in runs if len(r) == longest][-1]


def extract(collect: Collect, text: str) -> str | None:
    """The slot's value from an utterance, or None when it holds no valid value."""
    if collect.kind == "digits":
        value = spoken_digits(text)
        return value if collect.min_len <= len(value) <= collect.max_len else None
    if collect.kind == "choice":
        words = set(_TOKEN.findall(text.lower()))
        matches = [o for o in collect.options if set(_TOKEN.findall(o.lower())) <= words]
        return matches[0] if len(matches) == 1 else None
    value = " ".join(text.split())
    return value if collect.min_len <= len(value) <= collect.max_len else None


def valid_digits(collect: Collect, digits: str) -> bool:
    return collect.kind == "digits" and collect.min_len <= len(digits) <= collect.max_len
