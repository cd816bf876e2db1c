"""The contracts of the speech engines. All three are synchronous and CPU-bound: callers run
recognition and synthesis on a worker thread, never on the event loop; voice activity is cheap
enough (microseconds a frame) to run inline."""

from __future__ import annotations

from typing import Protocol

import numpy as np
import numpy.typing as npt

Samples = npt.NDArray[np.int16]  # 16-bit linear PCM, mono


class Recognizer(Protocol):
    sample_rate: int  # the rate `transcribe` wants its samples in

    def transcribe(self, samples: Samples) -> str:
        """The words in one utterance's audio ("" for none)."""
        ...


class Synthesizer(Protocol):
    sample_rate: int  # the rate of the samples `synthesize` returns
    identity: str  # names the voice and its settings: the same words, the same audio

    def synthesize(self, text: str) -> Samples:
        """`text` spoken."""
        ...


class VoiceActivity(Protocol):
    def is_speech(self, frame: Samples) -> bool:
        """Whether one 20 ms frame at 8 kHz (160 samples) holds speech."""
        ...

    def reset(self) -> None:
        """Forget what earlier frames left behind (a new call's audio)."""
        ...
