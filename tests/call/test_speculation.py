"""Speculative work on partial transcripts: the embedding and retrieval made for the caller's
words so far are used when the final says the same words, and only then."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from voice_agent.call.speculation import Speculator, words_of
from voice_agent.server.service import Service
from voice_agent.tasks import TaskScope
from voice_agent.turn import TurnRecord
from voice_agent.types import Passage, Vector

from ..conftest import call
from ..fakes import FakeLLM


class CountingEmbed:
    def __init__(self, fail: bool = False) -> None:
        self.texts: list[str] = []
        self.fail = fail
        self.release = asyncio.Event()
        self.release.set()

    async def __call__(self, text: str) -> Vector:
        self.texts.append(text)
        await self.release.wait()
        if self.fail:
            raise RuntimeError("encoder down")
        return [float(len(text))]  # type: ignore[return-value]


class CountingRetriever:
    def __init__(self) -> None:
        self.queries: list[str] = []

    async def retrieve(
        self,
        query: str,
        record: TurnRecord | None = None,
        vector: Vector | None = None,
        lexical_only: bool = False,
    ) -> list[Passage]:
        self.queries.append(query)
        return [Passage("doc", "Doc", f"about {query}")]


def test_the_same_text_is_the_same_words_spacing_aside() -> None:
    assert words_of("  What time  do you open? ") == words_of("What time do you open?")
    # Anything the encoder would see differently is not the same: its vector would differ.
    assert words_of("What time do you open") != words_of("What time do you open?")
    assert words_of("what time do you open?") != words_of("What time do you open?")


async def test_the_final_with_the_same_words_gets_the_partials_work() -> None:
    embed, retriever = CountingEmbed(), CountingRetriever()
    speculator = Speculator(embed, retriever, TaskScope("test"))
    speculator.partial("What time do you open?")
    prepared = await speculator.take(" What time do you  open?")
    assert prepared is not None
    assert prepared.vector == [22.0] and prepared.passages is not None
    assert prepared.passages[0].text == "about What time do you open?"
    assert embed.texts == ["What time do you open?"] and retriever.queries == embed.texts


async def test_a_final_that_says_something_else_gets_nothing() -> None:
    embed = CountingEmbed()
    speculator = Speculator(embed, None, TaskScope("test"))
    speculator.partial("do you deliver")
    await asyncio.sleep(0)
    assert await speculator.take("do you deliver on Sundays") is None
    assert await speculator.take("do you deliver") is None  # forgotten after a final


async def test_only_the_newest_partial_is_worked_on_while_one_is_under_way() -> None:
    embed = CountingEmbed()
    embed.release.clear()
    speculator = Speculator(embed, None, TaskScope("test"))
    for text in ("What", "What time", "What time do", "What time do you open?"):
        speculator.partial(text)
        await asyncio.sleep(0)
    embed.release.set()
    prepared = await speculator.take("What time do you open?")
    assert prepared is not None and prepared.vector == [22.0]
    assert embed.texts == ["What", "What time do you open?"]


async def test_failed_speculation_leaves_the_turn_to_do_its_own_work() -> None:
    speculator = Speculator(CountingEmbed(fail=True), None, TaskScope("test"))
    speculator.partial("what time do you open")
    await asyncio.sleep(0.01)
    assert await speculator.take("what time do you open") is None


@pytest.mark.model
@pytest.mark.parametrize("mode", ["enabled", "disabled"])
async def test_a_call_uses_its_partials_only_in_enabled_mode(
    make_service: Callable[..., Service], running: Any, mode: str
) -> None:
    llm = FakeLLM()
    service = make_service(llm, LATENCY_OPTIMIZATION_MODE=mode)
    async with running(service) as url, call(url) as client:
        await client.start()
        for text in ("Do you", "Do you deliver", "Do you deliver prescriptions?"):
            await client.send({"type": "user.utterance", "text": text, "final": False})
        used = (await client.ask("Do you deliver prescriptions?"))[-1]
        for text in ("Where", "Where are you located"):  # the final adds a question mark
            await client.send({"type": "user.utterance", "text": text, "final": False})
        missed = (await client.ask("Where are you located?"))[-1]
        plain = (await client.ask("Is there parking?"))[-1]
    if mode == "enabled":
        assert used["detail"]["flow"]["speculation"] == "used"
        assert "embedding" not in used["latency_ms"] and "retrieval" not in used["latency_ms"]
        assert used["detail"]["passages"][0] == "delivery"
        assert missed["detail"]["flow"]["speculation"] == "missed"
        assert "embedding" in missed["latency_ms"]
    else:
        assert "speculation" not in used["detail"]["flow"]
        assert "embedding" in used["latency_ms"]
    assert "speculation" not in plain["detail"]["flow"] and "embedding" in plain["latency_ms"]
    assert len(llm.calls) == 3
