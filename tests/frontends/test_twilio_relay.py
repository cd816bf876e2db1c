"""Twilio ConversationRelay conformance: the message sequences of ../shared/PROTOCOLS.md replayed
over a real WebSocket (setup with custom parameters, partial then final prompts, tokens with
`last`, an interrupt mid-answer with the heard text kept, DTMF, a transfer as `end` with
handoffData, unknown fields, string-typed numbers, a malformed frame), the signature check, and
the TwiML that connects a call."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from voice_agent.frontends.twilio_signature import signature
from voice_agent.server.service import Service

from ..fakes import FakeLLM, scaled

pytestmark = pytest.mark.model

SETUP = {
    "type": "setup",
    "sessionId": "VX1",
    "accountSid": "AC1",
    "parentCallSid": "",
    "callSid": "CA-relay-1",
    "from": "+18005550100",
    "to": "+18005550101",
    "forwardedFrom": "",
    "callType": "PSTN",
    "callerName": "",
    "direction": "inbound",
    "callStatus": "RINGING",
    "customParameters": {"callReference": "bar"},
    "someNewTwilioField": {"x": 1},
}


class Relay:
    def __init__(self, ws: Any) -> None:
        self.ws = ws

    async def send(self, frame: dict[str, Any] | str) -> None:
        await self.ws.send(frame if isinstance(frame, str) else json.dumps(frame))

    async def recv(self) -> dict[str, Any]:
        frame: dict[str, Any] = json.loads(await asyncio.wait_for(self.ws.recv(), scaled(10)))
        return frame

    async def answer(self) -> str:
        """Text tokens up to the one with last:true."""
        tokens = []
        while True:
            frame = await self.recv()
            assert frame["type"] == "text", frame
            tokens.append(frame["token"])
            if frame["last"]:
                return "".join(tokens)


@asynccontextmanager
async def relay(url: str, headers: dict[str, str] | None = None) -> AsyncIterator[Relay]:
    ws_url = url.replace("http://", "ws://") + "/twilio/relay"
    async with websockets.connect(ws_url, additional_headers=headers or {}) as ws:
        yield Relay(ws)


async def test_setup_partials_and_final_prompt_stream_tokens_with_last(
    make_service: Callable[..., Service], running: Any
) -> None:
    llm = FakeLLM()
    async with running(make_service(llm)) as url, relay(url) as twilio:
        await twilio.send(SETUP)
        await twilio.send({"type": "prompt", "voicePrompt": "What time", "last": False})
        await twilio.send({"type": "prompt", "voicePrompt": "What time do you", "last": "false"})
        await twilio.send(
            {"type": "prompt", "voicePrompt": "What time do you open?", "lang": "en-US",
             "last": True}
        )  # fmt: skip
        answer = await twilio.answer()
    assert answer == "Maple Street Pharmacy opens at 9 AM."
    assert len(llm.calls) == 1 and llm.calls[0][-1].content.endswith("What time do you open?")


async def test_an_interrupt_mid_answer_stops_it_and_keeps_only_what_was_heard(
    make_service: Callable[..., Service], running: Any
) -> None:
    tokens = ["Our ", "hours ", "are "] + ["long "] * 200
    llm = FakeLLM(tokens=tokens, token_interval_s=scaled(0.02))
    service = make_service(llm, VOICE_AGENT_LLM_TIMEOUT_S=60, VOICE_AGENT_LLM_MAX_TOKENS=1000)
    async with running(service) as url, relay(url) as twilio:
        await twilio.send(SETUP)
        await twilio.send({"type": "prompt", "voicePrompt": "What are your hours?", "last": True})
        first = await twilio.recv()
        assert first["type"] == "text" and first["last"] is False
        await twilio.send(
            {"type": "interrupt", "utteranceUntilInterrupt": "Our hours",
             "durationUntilInterruptMs": "460"}
        )  # fmt: skip
        await asyncio.sleep(scaled(0.1))
        sent = llm.tokens_sent
        assert llm.closed == 1
        llm.tokens, llm.token_interval_s = ["Yes."], 0
        await twilio.send({"type": "prompt", "voicePrompt": "Do you deliver?", "last": True})
        frames = []
        while not frames or not frames[-1]["last"]:
            frames.append(await twilio.recv())
    assert llm.tokens_sent == sent + 1  # nothing more of the interrupted answer was made
    # Only the new answer's tokens came after the interrupt settled.
    assert "".join(f["token"] for f in frames).endswith("Yes.")
    assert [m.content for m in llm.calls[1][-3:-1]] == ["What are your hours?", "Our hours"]


async def test_dtmf_fills_the_flow_and_hang_up_and_transfer_end_with_handoff_data(
    make_service: Callable[..., Service], running: Any
) -> None:
    service = make_service(FakeLLM(), VOICE_AGENT_DEFAULT_FLOW="pharmacy")
    async with running(service) as url, relay(url) as twilio:
        await twilio.send({**SETUP, "customParameters": {"flow": "pharmacy"}})
        assert (await twilio.answer()).startswith("Thanks for calling Maple Street Pharmacy")
        await twilio.send({"type": "prompt", "voicePrompt": "I need a refill", "last": True})
        assert await twilio.answer() == "Please say or key in your prescription number."
        for digit in [1, "2", "3", "4", "5", "6", "7", "#"]:  # a number as Twilio may send it
            await twilio.send({"type": "dtmf", "digit": digit})
        assert await twilio.answer() == "I have 1234567. Is that right?"
        await twilio.send({"type": "dtmf", "digit": "x"})  # malformed: logged, call goes on
        await twilio.send("not json")
        await twilio.send({"type": "prompt", "voicePrompt": "yes", "last": True})
        assert await twilio.answer() == "Your refill is on its way. Anything else?"
        await twilio.send({"type": "prompt", "voicePrompt": "no thanks, bye", "last": True})
        assert await twilio.answer() == "Goodbye!"
        hangup = await twilio.recv()
    assert hangup["type"] == "end" and json.loads(hangup["handoffData"]) == {"reason": "hangup"}
    async with running(service) as url, relay(url) as twilio:
        await twilio.send({**SETUP, "customParameters": {"flow": "pharmacy"}})
        await twilio.answer()  # greeting
        await twilio.send({"type": "prompt", "voicePrompt": "can I talk to a person", "last": True})
        said = await twilio.answer()
        end = await twilio.recv()
    assert said == "Let me connect you to a pharmacist."
    assert end["type"] == "end"
    assert json.loads(end["handoffData"]) == {"reason": "transfer", "to": "+15550100"}


async def test_a_bad_signature_is_refused_and_a_good_one_accepted(
    make_service: Callable[..., Service], running: Any
) -> None:
    service = make_service(FakeLLM(), TWILIO_AUTH_TOKEN="secret-token")
    async with running(service) as url:
        ws_url = url.replace("http://", "ws://") + "/twilio/relay"
        with pytest.raises(websockets.InvalidStatus):
            async with relay(url, {"X-Twilio-Signature": "bm9wZQ=="}):
                pass
        good = {"X-Twilio-Signature": signature("secret-token", ws_url)}
        async with relay(url, good) as twilio:
            await twilio.send(SETUP)
            await twilio.send({"type": "prompt", "voicePrompt": "hello", "last": True})
            assert await twilio.answer() == "Hello! How can I help you today?"


async def test_the_voice_webhook_returns_twiml_that_connects_to_the_relay(
    make_service: Callable[..., Service], running: Any
) -> None:
    async with running(make_service(FakeLLM())) as url, httpx.AsyncClient(base_url=url) as http:
        response = await http.post("/twilio/voice", data={"CallSid": "CA1"})
    assert response.headers["content-type"].startswith("application/xml")
    relay_url = url.replace("http://", "wss://") + "/twilio/relay"
    assert f'<ConversationRelay url="{relay_url}"' in response.text


async def test_digits_become_send_digits_and_twilios_error_frame_leaves_the_call_going(
    make_service: Callable[..., Service], running: Any, tmp_path: Path
) -> None:
    (tmp_path / "keys.yaml").write_text(
        "name: keys\nstart: menu\nstates:\n"
        '  menu: {say: "Connecting you to billing.", action: {dtmf: "1234#"}, next: answer}\n'
        '  answer: {task: "Answer questions.", on: {goodbye: bye}}\n'
        '  bye: {say: "Bye.", action: hangup}\n'
    )
    service = make_service(
        FakeLLM(), VOICE_AGENT_FLOW_PATH=tmp_path, VOICE_AGENT_DEFAULT_FLOW="keys"
    )
    async with running(service) as url, relay(url) as twilio:
        await twilio.send(SETUP)
        greeting = await twilio.answer()
        digits = await twilio.recv()
        await twilio.send({"type": "error", "description": "Invalid message received: x"})
        await twilio.send({"type": "prompt", "voicePrompt": "What time do you open?", "last": True})
        answer = await twilio.answer()
    assert greeting == "Connecting you to billing."
    assert digits == {"type": "sendDigits", "digits": "1234#"}
    assert answer == "Maple Street Pharmacy opens at 9 AM."
