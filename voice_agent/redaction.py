"""The caller's data kept out of what the service writes down: e-mail addresses, card numbers
(those that pass the Luhn check), phone numbers and any other run of six or more digits (an
account, a prescription, a code), written as digits or spoken as words ("one two three four
five six"). Each is replaced by a tag in brackets, so a line still reads as what happened."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

EMAIL = "[email]"
CARD = "[card]"
PHONE = "[phone]"
NUMBER = "[number]"

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# Digits with the separators people and speech-to-text put between them.
_DIGIT_RUN = re.compile(r"(?<![\w.])\+?\(?\d(?:[\d\s().-]*\d)?(?![\w])")
_WORDS = "zero|oh|one|two|three|four|five|six|seven|eight|nine"
_SPOKEN_RUN = re.compile(rf"\b(?:(?:{_WORDS})[\s,-]+){{5,}}(?:{_WORDS})\b", re.IGNORECASE)
_LONG_ENOUGH = 6  # fewer digits are times, prices, quantities


def luhn_ok(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def _digits(match: re.Match[str]) -> str:
    text = match.group(0)
    digits = re.sub(r"\D", "", text)
    if len(digits) < _LONG_ENOUGH:
        return text
    if 13 <= len(digits) <= 19 and luhn_ok(digits):
        return CARD
    if 10 <= len(digits) <= 15 and (text.startswith(("+", "(")) or re.search(r"[\s().-]", text)):
        return PHONE
    return NUMBER


def redact(text: str) -> str:
    """`text` with the caller's data replaced by tags."""
    if not text:
        return text
    text = _EMAIL.sub(EMAIL, text)
    text = _SPOKEN_RUN.sub(NUMBER, text)
    return _DIGIT_RUN.sub(_digits, text)


def redact_all(value: Any) -> Any:
    """Every string in a JSON-like value redacted (mappings, sequences, and strings within)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {key: redact_all(item) for key, item in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
        return [redact_all(item) for item in value]
    return value
