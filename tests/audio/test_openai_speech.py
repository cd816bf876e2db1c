"""The OpenAI-compatible recognizer and synthesizer against an endpoint played by httpx's
MockTransport, through the real `openai` client: what they send, what they make of the answer,
and an endpoint's failure as SpeechUnavailable."""

from __future__ import annotations

import io
import json
import wave

import httpx
import numpy as np
import pytest

from voice_agent.errors import SpeechUnavailable
from voice_agent.speech.openai_speech import OpenAIRecognizer, OpenAISynthesizer

BASE = "http://speech.test/v1"


def client(handler: httpx.MockTransport) -> httpx.Client:
    return httpx.Client(transport=handler)


def test_the_recognizer_sends_the_utterance_as_16_khz_wav_and_reads_the_text() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, text="Do you deliver?\n")

    recognizer = OpenAIRecognizer(BASE, "key", "whisper-1",
                                  http_client=client(httpx.MockTransport(answer)))  # fmt: skip
    samples = (np.sin(np.arange(1600) / 5) * 3000).astype(np.int16)
    assert recognizer.transcribe(samples) == "Do you deliver?"
    [request] = seen
    assert request.url.path == "/v1/audio/transcriptions"
    assert request.headers["authorization"] == "Bearer key"
    body = request.read()
    assert b'name="model"' in body and b"whisper-1" in body and b'name="language"' in body
    riff = body[body.index(b"RIFF") :]
    with wave.open(io.BytesIO(riff)) as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (16000, 1, 2)
        assert wav.getnframes() == 1600


def test_the_synthesizer_asks_for_pcm_and_returns_its_samples() -> None:
    pcm = np.array([0, 1000, -1000, 32767], dtype="<i2").tobytes()
    seen: list[dict[str, object]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.read()))
        return httpx.Response(200, content=pcm)

    voice = OpenAISynthesizer(BASE, "key", "tts-1", "alloy",
                              http_client=client(httpx.MockTransport(answer)))  # fmt: skip
    assert voice.synthesize("We open at nine.").tolist() == [0, 1000, -1000, 32767]
    assert voice.sample_rate == 24000
    assert seen == [{"model": "tts-1", "voice": "alloy", "input": "We open at nine.",
                     "response_format": "pcm"}]  # fmt: skip


@pytest.mark.parametrize("status", [401, 500, 503])
def test_an_endpoint_s_failure_is_speech_unavailable(status: int) -> None:
    failing = httpx.MockTransport(lambda request: httpx.Response(status, json={"error": {}}))
    recognizer = OpenAIRecognizer(BASE, "key", "whisper-1", http_client=client(failing))
    voice = OpenAISynthesizer(BASE, "key", "tts-1", "alloy", http_client=client(failing))
    with pytest.raises(SpeechUnavailable):
        recognizer.transcribe(np.zeros(160, dtype=np.int16))
    with pytest.raises(SpeechUnavailable):
        voice.synthesize("Hello.")
