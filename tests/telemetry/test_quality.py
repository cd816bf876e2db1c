"""The quality tracker in the running service: every served answer gets a [QUALITY] line; a
healthy run raises no alert; answers made wrong on purpose (the cache threshold lowered until
it serves anything) raise [QUALITY_ALERT] and switch the service to shadow within the window,
with the reason in the audit log."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from voice_agent.server.service import Service
from voice_agent.telemetry import sql
from voice_agent.telemetry.queries import BY_NAME

from ..conftest import CallClient, call
from ..fakes import FakeLLM, scaled

pytestmark = pytest.mark.model

WINDOW = 10
FAQ = [
    "What time do you open on Saturday?",
    "What are your hours during the week?",
    "Are you open on Sunday?",
    "Where are you located?",
    "What is your fax number?",
    "Is there parking?",
    "How long does a refill take?",
    "Do you take Aetna?",
    "How much is a flu shot?",
    "Do you accept HSA or FSA cards?",
]
OFF_TOPIC = [
    "Can you recommend a good pizza place?",
    "What is the capital of Australia?",
    "Tell me a joke about cats.",
    "How do I reset my wifi router?",
    "Who won the football game last night?",
    "Can you book me a taxi to the airport?",
    "What is the weather going to be like tomorrow?",
    "How many calories are in a banana?",
    "Play some jazz music please.",
    "Translate good morning into French.",
]


def tagged(caplog: pytest.LogCaptureFixture, tag: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith(tag)]


async def ask_all(client: CallClient, service: Service, questions: list[str]) -> list[str]:
    sources = []
    for question in questions:
        sources.append((await client.ask(question))[-1]["source"])
        assert service.quality is not None and await service.quality.drain(scaled(10))
    return sources


@pytest.fixture
def tracked(make_service: Callable[..., Service], tmp_path: Path) -> Service:
    return make_service(
        FakeLLM(),
        VOICE_AGENT_RESPONSE_CACHE=True,
        QUALITY_WINDOW_TURNS=WINDOW,
        VOICE_AGENT_AUDIT_LOG=str(tmp_path / "audit.jsonl"),
        VOICE_AGENT_TELEMETRY_FILE=str(tmp_path / "telemetry.jsonl"),
    )


async def test_a_healthy_run_scores_every_answer_and_raises_no_alert(
    tracked: Service, running: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="voice_agent.telemetry")
    async with running(tracked) as url, call(url) as client:
        await client.start()
        sources = await ask_all(client, tracked, FAQ)
    assert sources == ["cache"] * WINDOW
    quality = tagged(caplog, "[QUALITY]")
    assert len(quality) == WINDOW and all("source=cache" in line for line in quality)
    scores = [float(line.split("score=")[1].split()[0]) for line in quality]
    # Right answers that share few words with their question (an address for "where are you
    # located?") score lower on relevance; the window's mean is what the status reads.
    assert min(scores) > 60 and sum(scores) / len(scores) > 85
    assert tagged(caplog, "[QUALITY_ALERT]") == []
    assert tracked.flags is not None and tracked.flags.current.mode == "enabled"


async def test_wrong_answers_raise_an_alert_and_roll_back_to_shadow(
    tracked: Service, running: Any, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    caplog.set_level(logging.INFO, logger="voice_agent.telemetry")
    async with (
        running(tracked) as url,
        call(url) as client,
        httpx.AsyncClient(base_url=url) as http,
    ):
        await client.start()
        await ask_all(client, tracked, FAQ)
        await http.patch(
            "/v1/admin/flags", json={"cache_threshold": 0.05}, headers={"X-Actor": "test"}
        )
        sources = await ask_all(client, tracked, OFF_TOPIC)
        health = (await http.get("/healthz")).json()
        after = (await client.ask("What time do you open on Saturday?"))[-1]
    assert sources.count("cache") >= WINDOW // 2  # wrong FAQ answers served to them
    alerts = tagged(caplog, "[QUALITY_ALERT]")
    assert any("source=cache status=poor" in line for line in alerts), alerts
    assert any("switched to shadow" in line for line in alerts)
    assert tracked.flags is not None and tracked.flags.current.mode == "shadow"
    assert health["mode"] == "enabled"  # the start-up setting; the flags say what serves now
    assert after["source"] == "llm"  # shadow: the LLM path serves
    audit = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert audit[-1]["who"].startswith("auto-rollback: cache answers poor")
    assert audit[-1]["old"] == {"mode": "enabled"} and audit[-1]["new"] == {"mode": "shadow"}
    # The telemetry file holds the status each score left, so SQL finds the poor window.
    db = sql.connect([str(tmp_path / "telemetry.jsonl")])
    _, rows = sql.run(db, BY_NAME["degraded_windows_24h"].sql)
    assert ("cache", "poor", 1) in rows
    _, first_poor = sql.run(
        db, "SELECT window_mean FROM quality_logs WHERE source = 'cache' AND status = 'poor' "
        "ORDER BY ts LIMIT 1",
    )  # fmt: skip
    line = next(a for a in alerts if "source=cache status=poor" in a)
    assert first_poor[0][0] == float(line.split("mean=")[1].split()[0]), (first_poor, line)


async def test_small_talk_answered_from_templates_raises_no_alert(
    tracked: Service, running: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Template answers have little in common with their question ("Thanks a lot" / "You're
    welcome!", a repeat of the last answer): they are judged by their intent match too."""
    caplog.set_level(logging.INFO, logger="voice_agent.telemetry")
    small_talk = ["Hi there", "Are you a real person?", "Sorry, can you say that again?",
                  "Thanks a lot", "Hold on a second", "Hello"] * 3  # fmt: skip
    async with running(tracked) as url, call(url) as client:
        await client.start()
        sources = await ask_all(client, tracked, small_talk)
    assert sources == ["quick"] * len(small_talk)
    assert tagged(caplog, "[QUALITY_ALERT]") == []
    scores = [float(line.split(" score=")[1].split()[0]) for line in tagged(caplog, "[QUALITY]")]
    assert len(scores) == len(small_talk) and min(scores) >= 50
    assert tracked.flags is not None and tracked.flags.current.mode == "enabled"
