"""A request body past VOICE_AGENT_MAX_BODY_BYTES is refused with 413 before the app reads it,
declared or streamed; the service goes on answering."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from voice_agent.server.service import Service

from ..fakes import FakeLLM

pytestmark = pytest.mark.model

JSON = {"content-type": "application/json"}


def chat(text: str) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": text}]}


async def test_an_oversized_body_is_refused_whole_and_the_service_goes_on(
    make_service: Callable[..., Service], running: Any
) -> None:
    service = make_service(FakeLLM(), VOICE_AGENT_MAX_BODY_BYTES=65536)
    huge = json.dumps(chat("a" * 2_000_000)).encode()

    async def streamed() -> AsyncIterator[bytes]:
        for start in range(0, len(huge), 65536):
            yield huge[start : start + 65536]

    async with running(service) as url, httpx.AsyncClient(base_url=url, timeout=30) as http:
        declared = await http.post("/v1/chat/completions", content=huge, headers=JSON)
        chunked = await http.post("/v1/chat/completions", content=streamed(), headers=JSON)
        fine = await http.post("/v1/chat/completions", json=chat("Do you deliver?"))
    assert declared.status_code == 413 and chunked.status_code == 413
    assert "65536 bytes" in declared.json()["detail"]
    assert fine.status_code == 200 and fine.json()["choices"][0]["message"]["content"]
