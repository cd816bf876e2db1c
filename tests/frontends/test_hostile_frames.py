"""Frames a broken client or an attacker sends: JSON nested thousands deep, a number of
thousands of digits, text with lone surrogates and control characters. Each is refused (an
error frame where the protocol has one) or cleaned, and the call goes on, on every socket."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
import websockets

from voice_agent.server.service import Service

from ..conftest import call
from ..fakes import FakeLLM

pytestmark = pytest.mark.model

DEEP = '{"type":"user.utterance","text":' + "[" * 5000 + "]" * 5000 + "}"
HUGE_NUMBER = '{"type":"user.dtmf","digit":' + "9" * 5000 + "}"


async def test_unreadable_frames_get_an_error_frame_and_the_call_goes_on(
    make_service: Callable[..., Service], running: Any
) -> None:
    async with running(make_service(FakeLLM())) as url, call(url) as client:
        await client.start()
        for frame in (DEEP, HUGE_NUMBER):
            await client.send(frame)
            error = await client.recv()
            assert (error["type"], error["code"]) == ("error", "invalid_json")
        done = (await client.ask("Do you deliver?"))[-1]
        assert done["source"] == "llm"


async def test_text_no_model_can_take_is_cleaned_at_the_edge(
    make_service: Callable[..., Service], running: Any
) -> None:
    llm = FakeLLM()
    async with running(make_service(llm)) as url, call(url) as client:
        await client.start()
        done = (await client.ask("Do you \ud800deliver?\x00\x07"))[-1]
        assert done["source"] == "llm"
    assert llm.calls and "Do you deliver?" in llm.calls[-1][-1].content


@pytest.mark.parametrize(
    ("path", "ping"),
    [
        ("/retell/llm/hostile", {"interaction_type": "ping_pong", "timestamp": 1}),
        ("/twilio/relay", None),
    ],
)
async def test_vendor_sockets_survive_unreadable_frames(
    make_service: Callable[..., Service], running: Any, path: str, ping: dict[str, Any] | None
) -> None:
    async with running(make_service(FakeLLM())) as url:
        async with websockets.connect(url.replace("http://", "ws://") + path) as ws:
            for frame in (DEEP.replace('"type"', '"interaction_type"'), HUGE_NUMBER):
                await ws.send(frame)
            if ping is not None:  # Retell: config first, then the call's own frames
                await ws.send(json.dumps(ping))
                kinds = []  # the config frame and the greeting come first
                while "ping_pong" not in kinds and len(kinds) < 20:
                    kinds.append(json.loads(await ws.recv()).get("response_type"))
                assert kinds[0] == "config" and "ping_pong" in kinds
            else:
                setup = {"type": "setup", "callSid": "CA-hostile"}
                await ws.send(json.dumps(setup))
                await ws.send(json.dumps({"type": "prompt", "voicePrompt": "Do you deliver?"}))
                tokens = []
                while True:
                    frame = json.loads(await ws.recv())
                    tokens.append(frame)
                    if frame.get("last") is True:
                        break
                assert "".join(t["token"] for t in tokens).strip()
