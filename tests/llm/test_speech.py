from __future__ import annotations

from voice_agent.llm.speech import SpeechFilter


def speak(tokens: list[str], max_sentences: int = 5) -> tuple[str, list[str]]:
    speech = SpeechFilter(max_sentences)
    pieces = [speech.feed(t) for t in tokens]
    pieces.append(speech.flush())
    return "".join(pieces), pieces


def test_the_first_word_goes_out_with_the_first_token() -> None:
    text, pieces = speak(["We", " open", " at", " 9", " AM", "."])
    assert text == "We open at 9 AM."
    assert pieces[0] == "We"


def test_a_word_split_across_tokens_is_sent_once_without_a_gap() -> None:
    text, pieces = speak(["Ma", "ple", " Street", " Pharm", "acy."])
    assert text == "Maple Street Pharmacy."
    assert pieces[:2] == ["Ma", "ple"]


def test_markdown_list_markers_and_links_are_not_spoken() -> None:
    text, _ = speak(
        [
            "**Hours:** ",
            "\n- ",
            "Monday ",
            "to ",
            "Friday. ",
            "See ",
            "https://example.com/hours ",
            "for ",
            "`more`.",
        ]
    )
    assert text == "Hours: Monday to Friday. See our website for more."


def test_a_link_split_across_tokens_is_never_sent_in_part() -> None:
    text, pieces = speak(["Visit", " ht", "tps", "://maple", ".example", "/refill", " now."])
    assert text == "Visit our website now."
    assert all("ht" not in p for p in pieces)


def test_numbered_lists_lose_their_numbers_but_numbers_in_sentences_stay() -> None:
    text, _ = speak(["1. ", "Call ", "us ", "before ", "8.\n", "2. ", "Text ", "us."])
    assert text == "Call us before 8. Text us."


def test_stops_after_the_sentence_limit() -> None:
    speech = SpeechFilter(2)
    out = "".join(speech.feed(t) for t in ["One. ", "Two! ", "Three? ", "Four."])
    out += speech.flush()
    assert out == "One. Two!"
    assert speech.done


def test_a_leading_answer_label_is_dropped() -> None:
    text, _ = speak(["Answer", ": ", "We ", "deliver."])
    assert text == "We deliver."
