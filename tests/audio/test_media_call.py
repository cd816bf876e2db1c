"""A whole audio call over /twilio/media, end to end with the real engines: the caller's words
synthesized by the Piper voice and sent as 8 kHz mu-law frames; the agent's audio, as the phone
played it, recognized back by Whisper to check what the caller heard."""

from __future__ import annotations

import asyncio
import re
import time
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
import websockets

from voice_agent.audio import mulaw
from voice_agent.audio.resample import resample
from voice_agent.frontends.twilio_phone import TwilioPhone
from voice_agent.frontends.twilio_signature import signature
from voice_agent.rag.encoder import Encoder
from voice_agent.server.app import create_app
from voice_agent.server.build import build_service
from voice_agent.server.state import AppState
from voice_agent.settings import load_settings
from voice_agent.speech.kit import SpeechKit

from ..conftest import serve
from ..fakes import scaled

pytestmark = pytest.mark.model

SPEED = 2.0  # the phone talks and plays at twice the pace of speech: half the test's time


def words(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9 ]", " ", text.lower()).split())


@asynccontextmanager
async def audio_service(
    encoder: Encoder, speech: SpeechKit, **overrides: str
) -> AsyncIterator[tuple[AppState, str]]:
    settings = load_settings(
        **overrides,
        VOICE_AGENT_SPEECH="offline",
        VOICE_AGENT_LLM_BACKEND="extractive",
        VOICE_AGENT_DEFAULT_FLOW="pharmacy",
        VOICE_AGENT_TELEMETRY_FILE="",
        VOICE_AGENT_AUDIT_LOG="",
    )
    service = build_service(settings, encoder=encoder, speech=speech)
    app = create_app(service=service)
    try:
        async with serve(app) as url:
            yield app.state.voice_agent, url.replace("http://", "ws://") + "/twilio/media"
    finally:
        await service.aclose()


class Caller:
    """The caller's side: says a line (the Piper voice, through the phone line's mu-law) and
    hears the agent's answer back through Whisper."""

    def __init__(self, phone: TwilioPhone, speech: SpeechKit) -> None:
        self.phone, self.speech = phone, speech

    async def voice(self, text: str) -> bytes:
        return await asyncio.to_thread(self.speech.phrasebook.mulaw, text)

    async def say(self, text: str) -> float:
        """Say `text`; returns when it began (the agent may answer before its last frame)."""
        audio = await self.voice(text)
        await self.phone.silence(0.3)
        began = time.perf_counter()
        await self.phone.play(audio)
        return began

    async def hear(self, since: float) -> str:
        assert await self.phone.until_quiet(since, limit_s=scaled(30)), "the agent said nothing"
        # Whisper hears a short line better with a little silence around it, as speech is.
        pad = b"\xff" * 4000
        audio = pad + self.phone.audio_since(since) + pad
        samples = resample(mulaw.decode(audio), mulaw.SAMPLE_RATE, 16000)
        return words(await asyncio.to_thread(self.speech.recognizer.transcribe, samples))


async def test_a_whole_audio_call_greets_answers_takes_a_barge_in_and_keys_and_says_goodbye(
    encoder: Encoder, speech: SpeechKit
) -> None:
    async with audio_service(encoder, speech) as (state, url):
        async with websockets.connect(url) as ws, TwilioPhone(ws, speed=SPEED) as phone:
            caller = Caller(phone, speech)
            started = asyncio.get_running_loop().time()
            await phone.start("CAaudio1", flow="pharmacy")
            greeting = await caller.hear(0)
            assert "thanks for calling" in greeting and "help" in greeting, greeting

            # A question for the knowledge base (the LLM tier).
            spoke = await caller.say("Do you carry medication for pets?")
            answer = await caller.hear(spoke)
            # The extractive answer: "Maple Savings Club members get 15% off pet medications."
            assert "savings club" in answer and "medication" in answer, answer

            # A barge-in: the caller talks over a long answer; the phone is told to clear.
            spoke = await caller.say("Where can I dispose of old medication?")
            while phone.first_audio_after(spoke) is None:  # noqa: ASYNC110
                await asyncio.sleep(0.02)
            await asyncio.sleep(0.6 / SPEED)  # some of the answer plays
            clears = len(phone.log.clears)
            spoke = await caller.say("Is there parking?")
            assert len(phone.log.clears) > clears, "no clear on the barge-in"
            parking = await caller.hear(spoke)
            assert "park" in parking, parking
            # The history keeps of the answer talked over only the start the caller heard.
            (call,) = state.calls
            said = [m.content for m in call.session.history if m.role == "assistant"]
            kiosk = "Maple Street Pharmacy has a free medication take-back kiosk inside the store"
            cut = next(s for s in said if s.startswith("Maple") or s.startswith("Free"))
            assert len(cut) < len(kiosk + ", next to the pharmacy counter."), said

            # A refill by keypad.
            spoke = await caller.say("I need a refill.")
            ask = await caller.hear(spoke)
            assert "prescription number" in ask, ask
            keyed = time.perf_counter()
            await phone.dtmf("1234567#")
            confirm = await caller.hear(keyed)
            assert "1234567" in confirm.replace(" ", ""), confirm

            spoke = await caller.say("Yes.")
            done = await caller.hear(spoke)
            assert "on its way" in done, done
            spoke = await caller.say("No, that's all.")
            bye = await caller.hear(spoke)
            assert "bye" in bye, bye  # Whisper hears a lone "Goodbye!" as "bye" as often
            await asyncio.wait_for(phone.closed.wait(), scaled(10))
            assert asyncio.get_running_loop().time() - started < scaled(120)


async def test_a_media_call_behind_api_keys_is_let_in_by_the_key_in_its_start_frame(
    encoder: Encoder, speech: SpeechKit
) -> None:
    # Twilio takes no query on a <Stream> URL: the TwiML passes the key as a custom parameter.
    async with audio_service(
        encoder, speech, VOICE_AGENT_API_KEYS="twilio:s3cret-for-twilio-calls"
    ) as (state, url):
        async with websockets.connect(url) as ws, TwilioPhone(ws, speed=SPEED) as phone:
            await phone.start("CAkeyed", flow="pharmacy", token="s3cret-for-twilio-calls")
            greeting = await Caller(phone, speech).hear(0)
            assert "thanks for calling" in greeting, greeting
            (call,) = state.calls
            assert call.key == "twilio"
            assert "s3cret-for-twilio-calls" not in str(call.session.history)
        for token in ("wrong", None):
            async with websockets.connect(url) as ws, TwilioPhone(ws, speed=SPEED) as phone:
                params = {"flow": "pharmacy"} | ({"token": token} if token else {})
                await phone.start("CArefused", **params)
                await asyncio.wait_for(phone.closed.wait(), scaled(10))
                assert ws.close_code == 1008
                assert phone.log.pieces == []


async def test_a_media_call_needs_twilio_s_signature_when_the_auth_token_is_set(
    encoder: Encoder, speech: SpeechKit
) -> None:
    async with audio_service(encoder, speech, TWILIO_AUTH_TOKEN="secret-token") as (_, url):
        with pytest.raises(websockets.InvalidStatus):
            async with websockets.connect(
                url, additional_headers={"X-Twilio-Signature": "bm9wZQ=="}
            ):
                pass
        signed = {"X-Twilio-Signature": signature("secret-token", url)}
        async with (
            websockets.connect(url, additional_headers=signed) as ws,
            TwilioPhone(ws, speed=SPEED) as phone,
        ):
            await phone.start("CAsigned", flow="pharmacy")
            greeting = await Caller(phone, speech).hear(0)
            assert "thanks for calling" in greeting, greeting
        http_url = url.replace("ws://", "http://").removesuffix("/twilio/media")
        async with httpx.AsyncClient(base_url=http_url) as http:
            response = await http.post("/twilio/voice-stream?token=key-1", data={"CallSid": "CA1"})
        assert response.headers["content-type"].startswith("application/xml")
        stream = ET.fromstring(response.text).find("Connect/Stream")
        assert stream is not None and stream.attrib["url"] == url.replace("ws://", "wss://")
        assert [(p.attrib["name"], p.attrib["value"]) for p in stream] == [("token", "key-1")]
