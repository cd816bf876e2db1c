"""Audio made ahead: a sentence is synthesized once and found after that; making ahead skips
lines with placeholders and sentences already made; the store is bounded in bytes (the least
recently spoken dropped first); with a folder, a new phrasebook reads what an old one made."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from voice_agent.audio import mulaw
from voice_agent.audio.resample import resample
from voice_agent.speech.phrasebook import Phrasebook

from .speech_fakes import FakeSynthesizer

AUDIO_BYTES = 800  # the fake's 0.1 s at 8 kHz, one mu-law byte a sample


def files(folder: Path, pattern: str) -> list[Path]:
    return sorted(folder.glob(pattern))


@pytest.fixture
def synthesizer() -> FakeSynthesizer:
    return FakeSynthesizer()


@pytest.fixture
def book(synthesizer: FakeSynthesizer) -> Iterator[Phrasebook]:
    phrasebook = Phrasebook(synthesizer)
    yield phrasebook
    phrasebook.close()


async def test_speak_gives_the_sentence_as_8_khz_mu_law(
    book: Phrasebook, synthesizer: FakeSynthesizer
) -> None:
    audio = await book.speak("Hello there.")
    expected = mulaw.encode(resample(synthesizer.synthesize("Hello there."), 16000, 8000))
    assert audio == expected and len(audio) == AUDIO_BYTES


async def test_a_sentence_is_synthesized_once_and_then_found(
    book: Phrasebook, synthesizer: FakeSynthesizer
) -> None:
    first = await book.speak("Hello there.")
    assert (book.made, book.found, synthesizer.calls) == (1, 0, ["Hello there."])
    again = await book.speak("  Hello   there. ")  # the same words, spaced otherwise
    assert again == first
    assert (book.made, book.found, synthesizer.calls) == (1, 1, ["Hello there."])
    assert book.get("Hello there.") == first and len(book) == 1


async def test_get_finds_only_what_was_made(book: Phrasebook) -> None:
    assert book.get("Never said.") is None
    await book.speak("Said once.")
    assert book.get("Said  once.") is not None


async def test_prepare_makes_every_sentence_of_the_texts(
    book: Phrasebook, synthesizer: FakeSynthesizer
) -> None:
    made = await book.prepare(["Hello there. How can I help?", "We open at nine."])
    assert made == 3
    assert synthesizer.calls == ["Hello there.", "How can I help?", "We open at nine."]
    assert all(book.get(s) is not None for s in synthesizer.calls)
    await book.speak("How can I help?")
    assert book.found == 1 and len(synthesizer.calls) == 3


async def test_prepare_skips_placeholders_and_sentences_already_made(
    book: Phrasebook, synthesizer: FakeSynthesizer
) -> None:
    await book.speak("Hello there.")
    made = await book.prepare(["Hello there. Hi {name}, welcome back.", "We open at nine."])
    assert made == 1
    assert synthesizer.calls == ["Hello there.", "We open at nine."]
    assert book.get("Hi {name}, welcome back.") is None
    assert await book.prepare(["We open at nine."]) == 0


async def test_prepare_goes_on_past_a_sentence_the_voice_cannot_read() -> None:
    synthesizer = FakeSynthesizer(fail_on=frozenset({"Bad one."}))
    book = Phrasebook(synthesizer)
    try:
        assert await book.prepare(["Bad one. Good one."]) == 1
        assert book.get("Good one.") is not None and book.get("Bad one.") is None
    finally:
        book.close()


async def test_the_byte_bound_drops_the_least_recently_spoken(
    synthesizer: FakeSynthesizer,
) -> None:
    book = Phrasebook(synthesizer, max_bytes=2 * AUDIO_BYTES)
    try:
        await book.speak("First.")
        await book.speak("Second.")
        await book.speak("First.")  # spoken again: now the most recent
        await book.speak("Third.")
        assert len(book) == 2
        assert book.get("Second.") is None
        assert book.get("First.") is not None and book.get("Third.") is not None
    finally:
        book.close()


async def test_one_sentence_bigger_than_the_bound_is_still_kept(
    synthesizer: FakeSynthesizer,
) -> None:
    book = Phrasebook(synthesizer, max_bytes=AUDIO_BYTES // 2)
    try:
        await book.speak("First.")
        assert book.get("First.") is not None
        await book.speak("Second.")
        assert len(book) == 1 and book.get("Second.") is not None
    finally:
        book.close()


async def test_with_a_folder_a_new_phrasebook_reads_the_audio_instead_of_synthesizing(
    tmp_path: Path,
) -> None:
    first_voice = FakeSynthesizer()
    first = Phrasebook(first_voice, folder=tmp_path / "audio")
    try:
        await first.prepare(["Hello there. We open at nine."])
        audio = await first.speak("Hello there.")
        await first.speak("Your number is 1234567.")  # said on demand: memory only
    finally:
        first.close()
    assert len(files(tmp_path / "audio", "*.ulaw")) == 2
    assert files(tmp_path / "audio", "*.tmp") == []

    second_voice = FakeSynthesizer()
    second = Phrasebook(second_voice, folder=tmp_path / "audio")
    try:
        assert await second.speak("Hello there.") == audio
        assert await second.prepare(["We open at nine."]) == 1
        assert second_voice.calls == []
        assert second.get("We open at nine.") is not None
    finally:
        second.close()


async def test_a_folder_keeps_each_voice_s_audio_apart(tmp_path: Path) -> None:
    first = Phrasebook(FakeSynthesizer(identity="voice-a"), folder=tmp_path)
    try:
        await first.prepare(["Hello there."])
    finally:
        first.close()
    other_voice = FakeSynthesizer(identity="voice-b")
    second = Phrasebook(other_voice, folder=tmp_path)
    try:
        await second.prepare(["Hello there."])
        assert other_voice.calls == ["Hello there."]  # not the other voice's file
        assert len(files(tmp_path, "*.ulaw")) == 2
    finally:
        second.close()
