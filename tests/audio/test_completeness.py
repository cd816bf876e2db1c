"""Whether a caller's recognized words sound like a finished sentence, so the turn can end at
the first short pause: words that trail off or end on a word wanting more are not finished."""

from __future__ import annotations

import pytest

from voice_agent.speech.completeness import sounds_finished


@pytest.mark.parametrize(
    "text",
    [
        "yes",
        "Yes.",
        "Do you carry medication for pets?",
        "I want to refill my prescription.",
        "What time do you open on Saturday",  # no punctuation: the last word decides
        "  no thanks  ",
        "I'd like 2",
    ],
)
def test_words_ending_on_a_word_that_needs_nothing_after_it_are_finished(text: str) -> None:
    assert sounds_finished(text)


@pytest.mark.parametrize(
    "text",
    [
        "I want to refill my",
        "I need my prescription and",
        "and",
        "um",
        "Uh",
        "Can I speak to the",
        "I was wondering if",
        "So I'm",  # the apostrophe is part of the word
        "I WANT TO",  # case does not matter
    ],
)
def test_words_ending_on_a_word_that_needs_more_are_not_finished(text: str) -> None:
    assert not sounds_finished(text)


@pytest.mark.parametrize(
    "text", ["I was thinking...", "Maybe \u2026", "Well, the pharmacy,", "My number is 555-"]
)
def test_words_that_trail_off_are_not_finished(text: str) -> None:
    assert not sounds_finished(text)


@pytest.mark.parametrize("text", ["", "   ", "?!", "..."])
def test_no_words_are_not_finished(text: str) -> None:
    assert not sounds_finished(text)


def test_the_last_word_is_read_past_its_punctuation() -> None:
    assert not sounds_finished("Could you transfer me to.")  # "to", however it is written
    assert sounds_finished("Could you transfer the call?  ")


@pytest.mark.parametrize(
    "words", ["Can you tell me?", "I would like to know.", "Could you", "Do you know", "I'm"]
)
def test_a_question_or_a_verb_that_wants_more_is_not_finished(words: str) -> None:
    assert not sounds_finished(words)


@pytest.mark.parametrize("words", ["Thank you.", "Can you help me?", "Who made you?", "See you."])
def test_me_and_you_end_a_sentence_after_a_verb_that_takes_no_more(words: str) -> None:
    assert sounds_finished(words)
