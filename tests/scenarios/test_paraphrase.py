"""Paraphrase fan-out without a model: the model's lines read as rewordings, asked once per
line and model (then from the cache on disk), each run rewording every line, and per-line rates
counting only the runs that reached the line."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from pathlib import Path

from voice_agent.scenarios.model import Scenario
from voice_agent.scenarios.paraphrase import (
    ParaphraseCache,
    paraphrases,
    rate_lines,
    reworded,
    variants,
)
from voice_agent.types import Message


class Reworder:
    name = "reworder"

    def __init__(self, text: str) -> None:
        self.text = text
        self.asked: list[str] = []

    async def stream(
        self, messages: Sequence[Message], max_tokens: int
    ) -> AsyncGenerator[str, None]:
        self.asked.append(messages[-1].content)
        yield self.text


def test_the_models_lines_read_as_rewordings() -> None:
    text = '1. "Is there a car park?"\n- Can I park there?\n\nIs there parking?\n* can I park there'
    assert reworded(text, "Is there parking?") == ["Is there a car park?", "Can I park there?"]


async def test_a_line_is_asked_once_then_read_from_disk(tmp_path: Path) -> None:
    llm = Reworder("Can I park there?\nIs there a car park?\nWhere do I park?")
    cache = ParaphraseCache(tmp_path, "local:smol")
    assert await paraphrases(llm, "Is there parking?", 2, cache) == [
        "Can I park there?", "Is there a car park?"
    ]  # fmt: skip
    cache.save()
    again = ParaphraseCache(tmp_path, "local:smol")
    assert await paraphrases(llm, "Is there parking?", 3, again) == [
        "Can I park there?", "Is there a car park?", "Where do I park?"
    ]  # fmt: skip
    assert llm.asked == ["Is there parking?"]  # the second model's cache is another file
    assert ParaphraseCache(tmp_path, "openai:gpt").lines == {}


def test_each_run_rewords_every_line_and_rates_count_reached_runs() -> None:
    scenario = Scenario.model_validate({"name": "refill", "steps": [
        {"say": "I need a refill"}, {"dtmf": "1234567#"}, {"say": "yes"}
    ]})  # fmt: skip
    lines = {"I need a refill": ["Refill please", "Can I refill?"], "yes": ["yep"]}
    made = variants(scenario, lines, 3)
    assert [[s.say for s in v.steps] for v in made] == [
        ["Refill please", None, "yep"],
        ["Can I refill?", None, "yes"],
    ]  # a third run would change nothing: not made
    # The first run passes throughout; the second is not heard as a refill and stops there.
    rates = rate_lines(scenario, [(made[0], [True, True, True]), (made[1], [False, False, False])])
    refill, yes = rates
    assert (refill.passed, refill.reached, refill.failed_wordings) == (1, 2, ["Can I refill?"])
    assert (yes.passed, yes.reached) == (1, 1)
