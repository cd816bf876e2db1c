"""What the service writes down never holds the caller's card, phone number, e-mail address or
account-length digits, written or spoken; times, prices and short numbers stay readable."""

from __future__ import annotations

import pytest

from voice_agent.redaction import CARD, EMAIL, NUMBER, PHONE, luhn_ok, redact, redact_all


@pytest.mark.parametrize(
    ("said", "written"),
    [
        ("my card is 4111 1111 1111 1111 thanks", f"my card is {CARD} thanks"),
        ("it's 4111-1111-1111-1111", f"it's {CARD}"),
        ("call me at +1 (555) 010-0199", f"call me at {PHONE}"),
        ("my number is 555-010-0199.", f"my number is {PHONE}."),
        ("write to bob.smith+rx@example.co.uk please", f"write to {EMAIL} please"),
        ("my prescription is one two three four five six", f"my prescription is {NUMBER}"),
        ("I have 123456. Is that right?", f"I have {NUMBER}. Is that right?"),
        ("the code 4111111111111112", f"the code {NUMBER}"),  # fails Luhn: still digits
    ],
)
def test_the_callers_data_is_replaced_by_a_tag(said: str, written: str) -> None:
    assert redact(said) == written


@pytest.mark.parametrize(
    "plain",
    [
        "We open at 9 AM on Saturday and close at 10:30 PM.",
        "A flu shot is $40.00 without insurance, 2 for $75.",
        "Open 9-5 daily since 2026.",
        "Press one or two.",
    ],
)
def test_times_prices_and_short_numbers_stay(plain: str) -> None:
    assert redact(plain) == plain


def test_luhn_and_nested_records() -> None:
    assert luhn_ok("4111111111111111") and not luhn_ok("4111111111111112")
    record = {"q": "card 4111 1111 1111 1111", "detail": {"stored_for": ["a@b.io"]}, "n": 3}
    assert redact_all(record) == {"q": f"card {CARD}", "detail": {"stored_for": [EMAIL]}, "n": 3}
