"""When the caller speaks, pauses, goes on and is done, from one voice-activity decision per
20 ms frame. Pure and frame-counted (no clock), so tests feed it frames as fast as they like.

An utterance starts after `start_speech_ms` of speech in a row (`barge_in_speech_ms` while the
agent is talking, so a cough or the line's noise does not cut the agent off); it keeps
`pre_roll_ms` of the audio before, which the detector heard late. After `early_silence_ms` of
silence the utterance is `Paused`: its audio goes to recognition at once, and the fast tiers
can start on the words. Speech again (`start_speech_ms` of it) `Resumed`s the same utterance,
whose audio keeps growing; after `commit_silence_ms` of silence it is `Committed`, whatever
the words. The caller of this module commits earlier when the words sound finished
(completeness.py): that is the end of turn that beats a plain silence timer."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from voice_agent.speech.engines import Samples

FRAME_MS = 20


@dataclass(frozen=True, slots=True)
class TurnTiming:
    start_speech_ms: int = 60
    barge_in_speech_ms: int = 200
    early_silence_ms: int = 160
    commit_silence_ms: int = 700
    pre_roll_ms: int = 200
    max_utterance_ms: int = 15000

    def frames(self, ms: int) -> int:
        return max(1, round(ms / FRAME_MS))


@dataclass(frozen=True, slots=True)
class Started:
    utterance: int


@dataclass(frozen=True, slots=True)
class Paused:
    utterance: int
    audio: Samples  # the utterance so far, pre-roll and trailing silence included
    silence_ms: int  # how long ago the speech stopped


@dataclass(frozen=True, slots=True)
class Resumed:
    utterance: int


@dataclass(frozen=True, slots=True)
class Committed:
    utterance: int


Signal = Started | Paused | Resumed | Committed


class TurnTaker:
    def __init__(self, timing: TurnTiming | None = None) -> None:
        self.timing = timing or TurnTiming()
        t = self.timing
        # The frames that start an utterance are in the pre-roll too: it holds those and
        # `pre_roll_ms` before the longest start.
        self._pre_roll: deque[Samples] = deque(
            maxlen=t.frames(t.pre_roll_ms) + t.frames(max(t.start_speech_ms, t.barge_in_speech_ms))
        )
        self._early, self._commit = t.frames(t.early_silence_ms), t.frames(t.commit_silence_ms)
        self._max = t.frames(t.max_utterance_ms)
        self._audio: list[Samples] = []  # the current utterance's frames; empty when idle
        self._voiced_run = 0  # voiced frames in a row
        self._recent: deque[bool] = deque(maxlen=t.frames(t.barge_in_speech_ms))
        self._silence = 0  # unvoiced frames since the utterance's speech last ran
        self._paused = False
        self.utterance = 0  # the current (or last) utterance's number

    @property
    def in_utterance(self) -> bool:
        return bool(self._audio)

    def feed(self, frame: Samples, voiced: bool, agent_speaking: bool = False) -> list[Signal]:
        """One 20 ms frame and whether it holds speech; what it changed."""
        t = self.timing
        self._voiced_run = self._voiced_run + 1 if voiced else 0
        self._recent.append(voiced)
        if not self._audio:
            self._pre_roll.append(frame)
            if not self._starts(agent_speaking):
                return []
            self.utterance += 1
            self._audio, self._silence, self._paused = list(self._pre_roll), 0, False
            self._pre_roll.clear()
            return [Started(self.utterance)]
        self._audio.append(frame)
        signals: list[Signal] = []
        if self._paused and self._voiced_run >= t.frames(t.start_speech_ms):
            self._paused, self._silence = False, 0
            signals.append(Resumed(self.utterance))
        elif not voiced or self._paused:
            self._silence += 1
        else:
            self._silence = 0
        if not self._paused and (self._silence >= self._early or len(self._audio) >= self._max):
            self._paused = True
            signals.append(Paused(self.utterance, self.audio(), self._silence * FRAME_MS))
        if self._silence >= self._commit or len(self._audio) >= self._max:
            signals.append(Committed(self.utterance))
            self._audio, self._silence, self._paused, self._voiced_run = [], 0, False, 0
            self._recent.clear()
        return signals

    def _starts(self, agent_speaking: bool) -> bool:
        """Speech enough to start an utterance: the start's frames in a row, or while the agent
        talks, four in five of the barge-in's frames (speech has short gaps between sounds)."""
        t = self.timing
        if not agent_speaking:
            return self._voiced_run >= t.frames(t.start_speech_ms)
        window = list(self._recent)[-t.frames(t.barge_in_speech_ms) :]
        return len(window) == self._recent.maxlen and sum(window) * 5 >= len(window) * 4

    def audio(self) -> Samples:
        return np.concatenate(self._audio) if self._audio else np.zeros(0, dtype=np.int16)
