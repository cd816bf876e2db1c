"""A caller says a card number, a phone number and an e-mail address aloud (and the agent says
the e-mail back): none of them reaches a log line, the telemetry file, the live stream or a
shadow record; with transcripts off, no question or answer text is written at all."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import websockets

from voice_agent.server.service import Service

from ..conftest import call
from ..fakes import FakeLLM, scaled

pytestmark = pytest.mark.model

SAID = [
    "my card number is 4111 1111 1111 1111",
    "you can call me back on 555-010-0199",
    "send it to jane.doe@example.com please",
    "hello",
]
SECRETS = ["4111", "010-0199", "0100199", "jane.doe", "example.com"]
ANSWER = ("We will write to ", "jane.doe@example.com ", "today.")


async def a_call_with_secrets(service: Service, running: Any) -> list[str]:
    """The call, and every frame the live stream carried for it."""
    async with running(service) as url:
        ws_url = url.replace("http://", "ws://") + "/v1/telemetry"
        async with websockets.connect(ws_url) as stream, call(url) as client:
            await asyncio.sleep(scaled(0.1))  # subscribed before the turns
            await client.start()
            for text in SAID:
                await client.ask(text)
            live = [await asyncio.wait_for(stream.recv(), scaled(5)) for _ in SAID]
            assert await service.quality.drain(scaled(10)) and await service.shadow.drain(
                scaled(10)
            )
    return [str(frame) for frame in live]


async def test_the_callers_data_is_redacted_everywhere_it_is_written(
    make_service: Callable[..., Service],
    running: Any,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    caplog.set_level(logging.DEBUG, logger="voice_agent")
    telemetry_file = tmp_path / "telemetry.jsonl"
    service = make_service(
        FakeLLM(tokens=ANSWER),
        LATENCY_OPTIMIZATION_MODE="shadow",
        VOICE_AGENT_RESPONSE_CACHE=True,
        VOICE_AGENT_TELEMETRY_FILE=str(telemetry_file),
    )
    live = await a_call_with_secrets(service, running)
    written = telemetry_file.read_text()
    logged = "\n".join(record.getMessage() for record in caplog.records)
    for where, text in (("log", logged), ("file", written), ("stream", "\n".join(live))):
        leaked = [secret for secret in SECRETS if secret in text]
        assert leaked == [], f"{where} holds {leaked}"
    # Not vacuous: the turns were written, with tags where the data was.
    assert "[card]" in written and "[phone]" in written and "[email]" in written
    assert "[SHADOW]" in logged and "[TELEMETRY]" in logged and "[card]" in "\n".join(live)


async def test_with_transcripts_off_no_words_are_written(
    make_service: Callable[..., Service],
    running: Any,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    caplog.set_level(logging.INFO, logger="voice_agent")
    telemetry_file = tmp_path / "telemetry.jsonl"
    service = make_service(
        FakeLLM(tokens=ANSWER),
        VOICE_AGENT_TELEMETRY_TRANSCRIPTS=False,
        VOICE_AGENT_TELEMETRY_FILE=str(telemetry_file),
    )
    await a_call_with_secrets(service, running)
    turns = [json.loads(line) for line in telemetry_file.read_text().splitlines()]
    turns = [t for t in turns if t["type"] == "turn"]
    assert len(turns) == len(SAID)
    assert all(t["question"] is None and t["answer"] == "" and t["detail"] == {} for t in turns)
    assert "We will write" not in caplog.text and "my card number" not in caplog.text
