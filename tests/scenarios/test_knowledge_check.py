"""`no_contradiction` checks any tier's answer against the knowledge base: an LLM that denies
what the knowledge base says fails the step, with the sentence it contradicts; a faithful one
passes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from voice_agent.scenarios.model import Scenario
from voice_agent.scenarios.suite import run_scenario
from voice_agent.server.service import Service

from ..fakes import FakeLLM

pytestmark = pytest.mark.model

ASK = {"say": "Do you have parking for customers?", "expect": {"no_contradiction": True}}


@pytest.mark.parametrize(
    ("tokens", "contradicted"),
    [
        (("We ", "do ", "not ", "have ", "parking ", "for ", "customers."), True),
        (("Yes, ", "there ", "is ", "a ", "free ", "lot ", "behind ", "the ", "building."), False),
    ],
)
async def test_an_answer_that_denies_the_knowledge_base_fails(
    make_service: Callable[..., Service], running: Any, tokens: tuple[str, ...], contradicted: bool
) -> None:
    service = make_service(FakeLLM(tokens=tokens))
    scenario = Scenario.model_validate({"name": "parking", "flow": "qa", "steps": [ASK]})
    async with running(service) as url:
        verdict = await run_scenario(url, Path("parking.yaml"), scenario, None)
    [turn] = verdict.turns
    assert turn.turn.source == "llm" and turn.turn.contradicted is contradicted
    if contradicted:
        [failure] = turn.failures
        assert failure.startswith("the answer contradicts the knowledge base")
        assert "free customer parking lot behind the building" in failure
    else:
        assert turn.failures == []
