"""What the caller has heard of the agent's audio: pieces sent with marks, the marks named
back as they are played, and at a barge-in the played pieces plus the share of the playing
piece's words that its playing time covers. Times are given, never read from a clock."""

from __future__ import annotations

from voice_agent.call.playback import MARK_GRACE_S, Playback

FIRST = "Hello there."  # 2 words
SECOND = "How can I help you today?"  # 6 words


def two_pieces(turn_id: int = 1) -> Playback:
    """Two pieces of one turn sent at 0: 1 s, then 2 s (expected to start at 1 s)."""
    playback = Playback()
    playback.sent(f"{turn_id}.1", turn_id, FIRST, 1.0, level=1000.0, now=0.0)
    playback.sent(f"{turn_id}.2", turn_id, SECOND, 2.0, level=2000.0, now=0.0)
    return playback


def test_nothing_sent_is_nothing_speaking_and_nothing_heard() -> None:
    playback = Playback()
    assert not playback.speaking(0.0)
    assert playback.level(0.0) == 0.0
    assert playback.heard(0.0) == ""


def test_sent_audio_is_speaking_until_its_last_mark_is_played() -> None:
    playback = two_pieces()
    assert playback.speaking(0.5)
    playback.played("1.1", now=1.0)
    assert playback.speaking(1.0)
    playback.played("1.2", now=3.0)
    assert not playback.speaking(3.0)


def test_a_lost_mark_stops_counting_as_speaking_after_the_grace() -> None:
    playback = two_pieces()  # estimated to end at 3 s
    assert playback.speaking(3.0 + MARK_GRACE_S - 0.01)
    assert not playback.speaking(3.0 + MARK_GRACE_S + 0.01)


def test_a_mark_played_names_every_piece_before_it_as_played() -> None:
    playback = two_pieces()
    playback.played("1.2", now=3.0)  # the first mark was never named back
    assert playback.heard(3.0) == f"{FIRST} {SECOND}"


def test_the_level_is_the_playing_piece_s() -> None:
    playback = two_pieces()
    assert playback.level(0.5) == 1000.0
    playback.played("1.1", now=1.0)
    assert playback.level(1.5) == 2000.0
    playback.played("1.2", now=3.0)
    assert playback.level(3.0) == 0.0


def test_heard_is_the_played_pieces_and_a_time_share_of_the_playing_piece_s_words() -> None:
    playback = two_pieces()
    assert playback.heard(0.0) == ""
    assert playback.heard(0.5) == "Hello"  # half of 2 words
    playback.played("1.1", now=1.2)  # the second piece started when the first's mark came
    assert playback.heard(1.2) == FIRST
    assert playback.heard(2.2) == f"{FIRST} How can I"  # half of its 2 s: 3 of 6 words
    assert playback.heard(10.0) == f"{FIRST} {SECOND}"  # never more than the piece's words


def test_a_piece_queued_behind_another_is_not_heard_before_its_start() -> None:
    playback = Playback()
    playback.sent("1.1", 1, FIRST, 1.0, level=1.0, now=0.0)
    playback.sent("1.2", 1, SECOND, 2.0, level=1.0, now=0.5)  # expected to start at 1 s
    playback.played("1.1", now=0.9)
    assert playback.heard(0.9) == FIRST


def test_a_mark_that_was_never_sent_is_ignored() -> None:
    playback = two_pieces()
    playback.played("9.9", now=1.5)
    assert playback.speaking(1.5)
    assert playback.level(1.5) == 1000.0  # still the first piece
    assert playback.heard(0.5) == "Hello"  # its start unchanged


def test_a_new_turn_forgets_what_was_heard_of_the_last() -> None:
    playback = two_pieces(turn_id=1)
    playback.played("1.2", now=3.0)
    playback.sent("2.3", 2, "Anything else?", 1.0, level=1.0, now=4.0)
    assert playback.heard(4.0) == ""
    playback.played("2.3", now=5.0)
    assert playback.heard(5.0) == "Anything else?"


def test_an_older_turn_s_piece_still_playing_is_not_heard_as_the_new_turn_s() -> None:
    playback = Playback()
    playback.sent("1.1", 1, FIRST, 1.0, level=1.0, now=0.0)
    playback.sent("2.2", 2, SECOND, 2.0, level=1.0, now=0.0)
    assert playback.heard(0.5) == ""  # turn 1's piece plays, turn 2 is the newest
    playback.played("1.1", now=1.0)
    assert playback.heard(2.0) == "How can I"


def test_clear_drops_the_audio_not_played_and_keeps_what_was_heard() -> None:
    playback = two_pieces()
    playback.played("1.1", now=1.0)
    playback.clear()
    assert not playback.speaking(1.0)
    assert playback.level(1.0) == 0.0
    assert playback.heard(2.0) == FIRST
    playback.played("1.2", now=2.0)  # the cleared piece's mark, named back late: ignored
    assert playback.heard(2.0) == FIRST


def test_after_a_clear_new_audio_is_expected_to_start_at_once() -> None:
    playback = two_pieces()
    playback.clear()
    playback.sent("2.3", 2, SECOND, 2.0, level=1.0, now=0.5)
    assert playback.heard(1.5) == "How can I"  # started at 0.5, not at the cleared end (3 s)


def test_a_piece_of_no_duration_has_no_share_heard() -> None:
    playback = Playback()
    playback.sent("1.1", 1, FIRST, 0.0, level=1.0, now=0.0)
    assert playback.heard(5.0) == ""


def test_a_turn_with_no_audio_sent_yet_has_heard_nothing_of_the_one_before() -> None:
    playback = Playback()
    playback.sent("1.1", 1, "Hello there.", 1.0, 1000.0, 0.0)
    playback.played("1.1", 1.0)
    assert playback.heard(1.5, 1) == "Hello there."
    assert playback.heard(1.5, 2) == ""  # turn 2 is being spoken, none of it sent
