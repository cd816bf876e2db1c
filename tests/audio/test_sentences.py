"""The pieces a reply is spoken in: a template's answer arriving whole is spoken (and found in
the phrasebook) sentence by sentence under the same keys `split` gives it; an LLM's streamed
tokens give their first clause early, and only the first."""

from __future__ import annotations

from voice_agent.speech.sentences import MIN_CLAUSE_WORDS, SentenceBuffer, normalize, split

TWO_SENTENCES = "Our pharmacy opens at nine, and closes at five. Call us any time!"


def stream(buffer: SentenceBuffer, tokens: list[str]) -> list[list[str]]:
    """What each token gave out, then what the flush gave."""
    return [buffer.add(token) for token in tokens] + [buffer.flush()]


def joined(given: list[list[str]]) -> list[str]:
    return [piece for pieces in given for piece in pieces]


def test_normalize_single_spaces_the_words() -> None:
    assert normalize("  Hello \n there\t now ") == "Hello there now"


def test_split_cuts_at_sentence_ends_followed_by_space_and_at_line_breaks() -> None:
    text = "Hello there.  How can I help? Bye!"
    assert split(text) == ["Hello there.", "How can I help?", "Bye!"]
    assert split("First line\nSecond line\n\n") == ["First line", "Second line"]
    assert split("") == [] and split("   ") == []


def test_split_keeps_the_dots_inside_a_decimal_and_a_file_name() -> None:
    assert split("It costs 3.5 dollars. The file is notes.txt now.") == [
        "It costs 3.5 dollars.",
        "The file is notes.txt now.",
    ]


def test_a_whole_one_sentence_template_is_given_whole_at_flush() -> None:
    buffer = SentenceBuffer()
    text = "Our pharmacy opens at nine, and closes at five."  # a clause of 5 words before ","
    assert buffer.add(text) == []  # no early clause: the sentence is already whole
    assert buffer.flush() == [text] == split(text)


def test_a_whole_template_of_several_sentences_is_given_per_sentence_under_split_s_keys() -> None:
    buffer = SentenceBuffer()
    pieces = buffer.add(TWO_SENTENCES) + buffer.flush()
    assert pieces == ["Our pharmacy opens at nine, and closes at five.", "Call us any time!"]
    assert pieces == split(TWO_SENTENCES)


def test_a_template_s_pieces_are_normalized_like_split_s() -> None:
    text = "Hello  there.\nHow   can I help?"
    buffer = SentenceBuffer()
    assert buffer.add(text) + buffer.flush() == split(text) == ["Hello there.", "How can I help?"]


def test_streamed_tokens_give_the_first_clause_early() -> None:
    tokens = ["Our ", "pharmacy ", "opens ", "at ", "nine, ", "and ", "closes ", "at ", "five, "]
    tokens += ["every ", "day. ", "Call ", "us."]
    given = stream(SentenceBuffer(), tokens)
    assert given[:4] == [[], [], [], []]
    assert given[4] == ["Our pharmacy opens at nine,"]  # the clause, as soon as its comma came
    assert given[8] == []  # a second clause waits for its sentence
    assert given[10] == ["and closes at five, every day."]
    assert given[11:] == [[], [], ["Call us."]]
    assert joined(given) == [
        "Our pharmacy opens at nine,",
        "and closes at five, every day.",
        "Call us.",
    ]


def test_a_clause_of_fewer_than_min_clause_words_is_not_given_early() -> None:
    assert MIN_CLAUSE_WORDS == 4
    tokens = ["Sure ", "thing ", "friend, ", "we ", "open ", "at ", "nine ", "on ", "Monday."]
    given = stream(SentenceBuffer(), tokens)
    assert joined(given[:-1]) == []
    assert given[-1] == ["Sure thing friend, we open at nine on Monday."]


def test_only_the_turn_s_first_piece_may_be_a_clause() -> None:
    buffer = SentenceBuffer()
    assert buffer.add("Yes. ") == ["Yes."]
    assert buffer.add("Our pharmacy opens at nine, ") == []  # a sentence went first
    assert buffer.add("and closes at five. ") == ["Our pharmacy opens at nine, and closes at five."]


def test_without_first_clause_a_stream_is_given_by_sentences_only() -> None:
    tokens = ["Our ", "pharmacy ", "opens ", "at ", "nine, ", "and ", "closes ", "at ", "five."]
    given = stream(SentenceBuffer(first_clause=False), tokens)
    assert joined(given[:-1]) == []
    assert given[-1] == ["Our pharmacy opens at nine, and closes at five."]


def test_a_streamed_decimal_is_not_split() -> None:
    tokens = ["It ", "costs ", "3", ".", "5 ", "dollars", ". ", "Thanks", "."]
    given = stream(SentenceBuffer(), tokens)
    assert joined(given) == ["It costs 3.5 dollars.", "Thanks."]
    assert given[3] == []  # "It costs 3." is not a sentence yet: no space after its dot


def test_flush_empties_the_buffer() -> None:
    buffer = SentenceBuffer()
    buffer.add("Still talking")
    assert buffer.flush() == ["Still talking"]
    assert buffer.flush() == []
    assert SentenceBuffer().flush() == []
