"""Speech engines for tests of the logic around them: no model, a few microseconds a call."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np

from voice_agent.speech.engines import Samples


@dataclass
class FakeSynthesizer:
    """Speaks any text as a short sine, its pitch set by the text's length (so different
    sentences have different audio); counts what it was asked. `fail_on` texts raise."""

    sample_rate: int = 16000
    identity: str = "fake"
    seconds: float = 0.1
    amplitude: int = 3000
    fail_on: frozenset[str] = frozenset()
    calls: list[str] = field(default_factory=list)

    def synthesize(self, text: str) -> Samples:
        self.calls.append(text)
        if text in self.fail_on:
            raise RuntimeError(f"cannot say {text!r}")
        t = np.arange(int(self.sample_rate * self.seconds)) / self.sample_rate
        hz = 200 + 10 * len(text)
        return (self.amplitude * np.sin(2 * np.pi * hz * t)).astype(np.int16)


@dataclass
class FakeRecognizer:
    """Hears `words` in any audio; keeps the audio it was given. With `gate`, each call waits
    (on the recognition thread) until the test sets it."""

    words: str = "I need a refill."
    sample_rate: int = 16000
    gate: threading.Event | None = None
    heard: list[Samples] = field(default_factory=list)

    def transcribe(self, samples: Samples) -> str:
        if self.gate is not None:
            self.gate.wait(timeout=10)
        self.heard.append(samples)
        return self.words
