"""Turn taking from one voice-activity decision per 20 ms frame: when an utterance starts, when
it pauses (its audio to recognition), resumes and is committed, and what it takes to start one
while the agent is talking. Pure and frame-counted, so the frames are fed as fast as they go."""

from __future__ import annotations

import numpy as np

from voice_agent.speech.turn_taking import (
    FRAME_MS,
    Committed,
    Paused,
    Resumed,
    Signal,
    Started,
    TurnTaker,
    TurnTiming,
)

# The defaults, in frames: start 3, barge-in 10, early silence 8, commit 35, pre-roll 10.
TIMING = TurnTiming()


def frame(value: int = 0) -> np.ndarray:
    """One 20 ms frame of 8 kHz audio; `value` marks it, to find it again in an utterance."""
    return np.full(160, value, dtype=np.int16)


def feed(turns: TurnTaker, voiced: list[bool], agent_speaking: bool = False) -> list[Signal]:
    signals: list[Signal] = []
    for flag in voiced:
        signals += turns.feed(frame(), flag, agent_speaking=agent_speaking)
    return signals


def speak(turns: TurnTaker, frames: int = 10) -> list[Signal]:
    return feed(turns, [True] * frames)


def silence(turns: TurnTaker, frames: int) -> list[Signal]:
    return feed(turns, [False] * frames)


def test_the_timing_counts_frames_of_20_ms_and_never_none() -> None:
    assert FRAME_MS == 20
    assert TIMING.frames(TIMING.start_speech_ms) == 3
    assert TIMING.frames(TIMING.early_silence_ms) == 8
    assert TIMING.frames(TIMING.commit_silence_ms) == 35
    assert TIMING.frames(0) == 1


def test_an_utterance_starts_after_start_speech_ms_of_speech_in_a_row() -> None:
    turns = TurnTaker()
    assert feed(turns, [True, True, False, True, True]) == []  # two, a gap, two
    assert not turns.in_utterance
    assert turns.feed(frame(), True) == [Started(1)]  # the third in a row
    assert turns.utterance == 1
    assert turns.in_utterance


def test_silence_alone_never_starts_an_utterance() -> None:
    turns = TurnTaker()
    assert silence(turns, 200) == []
    assert not turns.in_utterance and turns.utterance == 0


def test_the_audio_before_the_start_is_kept_as_pre_roll() -> None:
    turns = TurnTaker()
    for value in range(1, 21):  # 20 frames of silence, marked 1 to 20
        assert turns.feed(frame(value), False) == []
    signals = [s for v in (101, 102, 103) for s in turns.feed(frame(v), True)]
    assert signals == [Started(1)]
    paused = [s for s in silence(turns, 8) if isinstance(s, Paused)]
    assert len(paused) == 1
    marks = paused[0].audio.reshape(-1, 160)[:, 0].tolist()
    # The pre-roll holds pre_roll_ms (10 frames) before the longest start (a barge-in's 10
    # frames) and the start's own frames: here 17 frames of what came before, then the start.
    assert marks[:20] == [*range(4, 21), 101, 102, 103]
    assert marks[:20][-13:-3] == list(range(11, 21))  # at least pre_roll_ms before the speech
    assert marks[20:] == [0] * 8  # then the trailing silence


def test_the_utterance_pauses_after_early_silence_ms_with_its_audio_so_far() -> None:
    turns = TurnTaker()
    speak(turns, 10)
    assert silence(turns, 7) == []
    signals = turns.feed(frame(), False)
    assert len(signals) == 1 and isinstance(signals[0], Paused)
    paused = signals[0]
    assert paused.utterance == 1
    assert paused.silence_ms == 8 * FRAME_MS
    assert len(paused.audio) == (10 + 8) * 160  # speech and trailing silence, nothing before
    assert paused.audio.dtype == np.int16
    assert turns.in_utterance  # paused, not over


def test_a_short_gap_inside_speech_does_not_pause() -> None:
    turns = TurnTaker()
    speak(turns, 10)
    assert silence(turns, 7) == []
    assert speak(turns, 1) == []  # the silence count starts again
    assert silence(turns, 7) == []
    assert [type(s) for s in silence(turns, 1)] == [Paused]


def test_speech_before_the_commit_resumes_the_same_utterance() -> None:
    turns = TurnTaker()
    speak(turns, 10)
    first = next(s for s in silence(turns, 10) if isinstance(s, Paused))
    assert speak(turns, 2) == []  # not yet start_speech_ms of it
    assert turns.feed(frame(), True) == [Resumed(1)]
    speak(turns, 5)
    second = [s for s in silence(turns, 8) if isinstance(s, Paused)]
    assert len(second) == 1 and second[0].utterance == 1
    # the audio kept growing: the first pause's frames, then everything since (the 2 frames
    # of silence after the first pause among them)
    assert len(second[0].audio) == len(first.audio) + (2 + 3 + 5 + 8) * 160
    assert np.array_equal(second[0].audio[: len(first.audio)], first.audio)


def test_a_blip_while_paused_counts_as_silence_toward_the_commit() -> None:
    turns = TurnTaker()
    speak(turns, 10)
    silence(turns, 10)  # paused at 8
    feed(turns, [True, True])  # short of a resumption
    assert silence(turns, 22) == []  # 10 + 2 + 22 = 34 frames since the speech
    assert turns.feed(frame(), False) == [Committed(1)]


def test_the_utterance_is_committed_after_commit_silence_ms() -> None:
    turns = TurnTaker()
    speak(turns, 10)
    signals = silence(turns, 34)
    assert [type(s) for s in signals] == [Paused]
    assert turns.feed(frame(), False) == [Committed(1)]
    assert not turns.in_utterance
    assert len(turns.audio()) == 0


def test_the_next_utterance_has_the_next_number() -> None:
    turns = TurnTaker()
    speak(turns, 10)
    silence(turns, 35)
    assert speak(turns, 3) == [Started(2)]


def test_max_utterance_ms_forces_a_pause_and_a_commit() -> None:
    turns = TurnTaker(TurnTiming(max_utterance_ms=400))  # 20 frames
    assert speak(turns, 3) == [Started(1)]
    assert speak(turns, 16) == []  # 19 frames of audio (the start's 3 among them)
    signals = turns.feed(frame(), True)
    assert [type(s) for s in signals] == [Paused, Committed]
    paused = signals[0]
    assert isinstance(paused, Paused) and paused.utterance == 1 and paused.silence_ms == 0
    assert len(paused.audio) == 20 * 160
    assert signals[1] == Committed(1)
    assert not turns.in_utterance


def test_max_utterance_ms_commits_an_utterance_already_paused_without_a_second_pause() -> None:
    turns = TurnTaker(TurnTiming(max_utterance_ms=400, commit_silence_ms=2000))  # 20 frames
    speak(turns, 5)
    assert [type(s) for s in silence(turns, 14)] == [Paused]  # 19 frames, paused at 13
    assert turns.feed(frame(), False) == [Committed(1)]


def test_while_the_agent_speaks_three_voiced_frames_do_not_start_an_utterance() -> None:
    turns = TurnTaker()
    cough = [False] * 10 + [True] * 3
    assert feed(turns, cough + [False] * 20, agent_speaking=True) == []
    assert not turns.in_utterance
    # the same cough with the agent silent is an utterance
    assert feed(TurnTaker(), cough) == [Started(1)]


def test_while_the_agent_speaks_a_start_needs_four_in_five_of_barge_in_frames() -> None:
    turns = TurnTaker()
    # 10 frames (barge_in_speech_ms) with 8 voiced, gaps between sounds included
    pattern = [True, True, False, True, True, True, False, True, True]
    assert feed(turns, pattern, agent_speaking=True) == []  # 9 frames: short of the window
    assert turns.feed(frame(), True, agent_speaking=True) == [Started(1)]


def test_while_the_agent_speaks_seven_in_ten_voiced_frames_do_not_start() -> None:
    turns = TurnTaker()
    seven_in_ten = [True, True, False, True, True, False, True, True, False, True]
    assert feed(turns, seven_in_ten * 3, agent_speaking=True) == []


def test_a_barge_in_window_needs_frames_heard_since_the_last_commit() -> None:
    turns = TurnTaker()
    speak(turns, 10)
    silence(turns, 35)  # committed: the window of recent frames starts again
    assert feed(turns, [True] * 9, agent_speaking=True) == []
    assert turns.feed(frame(), True, agent_speaking=True) == [Started(2)]
