"""Shadow mode: the LLM path serves every turn while the fast tiers decide beside it; each turn
they would have answered gets a [SHADOW] record (served and would-be answers, their latency and
similarity), and the cache still learns from the served answers."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import pytest

from voice_agent.service import Service

from .conftest import call
from .fakes import FakeLLM, scaled

pytestmark = pytest.mark.model


async def test_shadow_serves_the_llm_and_records_what_the_fast_tiers_would_say(
    make_service: Callable[..., Service], running: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="voice_agent.telemetry")
    llm = FakeLLM(tokens=("We ", "open ", "at ", "9 ", "AM ", "on ", "Saturdays."))
    service = make_service(llm, LATENCY_OPTIMIZATION_MODE="shadow", VOICE_AGENT_RESPONSE_CACHE=True)
    async with running(service) as url, call(url) as client:
        ready = await client.start()
        served = [
            (await client.ask(text))[-1]
            for text in ("hello there", "What time do you open on Saturday?", "Do you deliver?")
        ]
        assert await service.shadow.drain(scaled(5))
        assert service.cache is not None and await service.cache.drain(scaled(5))
    assert ready["mode"] == "shadow"
    assert [d["source"] for d in served] == ["llm", "llm", "llm"] and len(llm.calls) == 3
    records = [
        json.loads(r.getMessage().split(" ", 1)[1])
        for r in caplog.records
        if r.getMessage().startswith("[SHADOW]")
    ]
    would_be = {r["question"]: r["would_be"] for r in records}
    assert would_be["hello there"]["source"] == "quick"
    saturday = next(r for r in records if r["question"].startswith("What time"))
    assert saturday["would_be"]["source"] == "cache"  # the FAQ's warm answer
    assert saturday["would_be"]["answer"].startswith("Maple Street Pharmacy opens at 9 AM")
    assert saturday["served"]["source"] == "llm" and 0.5 < saturday["similarity"] <= 1
    assert saturday["would_be"]["latency_ms"] > 0 and saturday["served"]["first_token_ms"] > 0
    assert served[2]["detail"]["cache_stored"] is True  # the cache learns in shadow
