"""Recognition and synthesis by an OpenAI-compatible endpoint (`/audio/transcriptions`,
`/audio/speech`): the production option where the offline models are too weak or too slow.
Both run on the worker threads like the offline engines, with the synchronous client; the
endpoint's errors become `SpeechUnavailable`, so a turn fails alone and the call goes on."""

from __future__ import annotations

import io
import wave
from typing import Any

import numpy as np

from voice_agent.errors import SpeechUnavailable
from voice_agent.speech.engines import Samples

SPEECH_RATE = 24000  # the rate of the endpoint's `pcm` responses: 16-bit, mono


def wav_bytes(samples: Samples, rate: int) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(samples.astype("<i2").tobytes())
    return out.getvalue()


def _client(base_url: str | None, api_key: str | None, timeout_s: float, http: Any) -> Any:
    import openai

    return openai.OpenAI(base_url=base_url, api_key=api_key or "none", timeout=timeout_s,
                         max_retries=0, http_client=http)  # fmt: skip


class OpenAIRecognizer:
    sample_rate = 16000

    def __init__(self, base_url: str | None, api_key: str | None, model: str,
                 timeout_s: float = 5.0, http_client: Any = None) -> None:  # fmt: skip
        self._client = _client(base_url, api_key, timeout_s, http_client)
        self._model = model

    def transcribe(self, samples: Samples) -> str:
        import openai

        audio = ("utterance.wav", wav_bytes(samples, self.sample_rate), "audio/wav")
        try:
            result = self._client.audio.transcriptions.create(
                model=self._model, file=audio, language="en", response_format="text"
            )
        except openai.OpenAIError as exc:
            raise SpeechUnavailable(f"transcription failed: {type(exc).__name__}") from exc
        return str(getattr(result, "text", result)).strip()


class OpenAISynthesizer:
    sample_rate = SPEECH_RATE

    def __init__(self, base_url: str | None, api_key: str | None, model: str, voice: str,
                 timeout_s: float = 5.0, http_client: Any = None) -> None:  # fmt: skip
        self._client = _client(base_url, api_key, timeout_s, http_client)
        self._model, self._voice = model, voice
        self.identity = f"openai {base_url} {model} {voice}"

    def synthesize(self, text: str) -> Samples:
        import openai

        try:
            response = self._client.audio.speech.create(
                model=self._model, voice=self._voice, input=text, response_format="pcm"
            )
        except openai.OpenAIError as exc:
            raise SpeechUnavailable(f"speech failed: {type(exc).__name__}") from exc
        return np.frombuffer(response.content, dtype="<i2").astype(np.int16)
