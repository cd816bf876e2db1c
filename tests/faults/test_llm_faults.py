"""The LLM misbehaving, through the real `openai` client against a small OpenAI-compatible
server: slow, erroring, hanging, refusing connections, returning garbage, closing the stream
mid-answer. Bound held in every case: each turn's answer is complete (agent.done) within the
state's hard limit + 100 ms of the caller's words; a failed or cut answer is the fallback
line, never served as a whole answer and never cached; the log holds no traceback; and a call
answered by a template on the same process is not slowed."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest

from voice_agent.llm.openai_client import OpenAILLM
from voice_agent.server.service import Service

from ..conftest import CallClient, call, serve
from ..fakes import scaled
from ..openai_server import Behaviour, openai_compatible_app

pytestmark = pytest.mark.model

FIRST_TOKEN_S, STALL_S, HARD_S = 0.3, 0.5, 1.5
QUESTION = "Can I get my prescription delivered to my office downtown?"
TEMPLATED = "hello"  # a greeting: the quick tier's


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port  # nothing listens once the socket is closed: connections are refused


@asynccontextmanager
async def llm_at(behaviour: Behaviour | None) -> AsyncIterator[OpenAILLM]:
    """The real client, at the stub server behaving so; at a closed port for None."""
    if behaviour is None:
        base = f"http://127.0.0.1:{closed_port()}/v1"
        llm = OpenAILLM(model="m", base_url=base, api_key="k", timeout_s=HARD_S)
        yield llm
        await llm.close()
        return
    async with serve(openai_compatible_app(behaviour)) as url:
        llm = OpenAILLM(model="m", base_url=f"{url}/v1", api_key="k", timeout_s=HARD_S)
        yield llm
        await llm.close()


async def timed_ask(client: CallClient, text: str) -> tuple[list[dict[str, Any]], float]:
    started = time.perf_counter()
    frames = await client.ask(text)
    return frames, time.perf_counter() - started


FAULTS = {
    "slow_first_token": Behaviour(first_token_s=0.6),
    "slow_past_the_hard_limit": Behaviour(tokens=["Word "] * 30, token_s=0.2),
    "erroring": Behaviour(status=500),
    "hanging": Behaviour(first_token_s=3600),
    "refusing_connections": None,
    "garbage": Behaviour(garbage="data: {this is not json\n\n"),
    "garbage_shape": Behaviour(garbage='data: {"object": "nonsense"}\n\ndata: [DONE]\n\n'),
    "cut_mid_answer": Behaviour(tokens=["We ", "open ", "at "], cut=True),
}
ANSWERED = {"slow_first_token"}  # the one fault the caller still gets the real answer through


@pytest.mark.parametrize("fault", list(FAULTS))
async def test_an_llm_fault_costs_only_the_fallback_line_within_the_hard_limit(
    fault: str,
    make_service: Callable[..., Service],
    running: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with llm_at(FAULTS[fault]) as llm:
        service = make_service(
            llm,
            VOICE_AGENT_FIRST_TOKEN_BUDGET_S=FIRST_TOKEN_S,
            VOICE_AGENT_LLM_STALL_TIMEOUT_S=STALL_S,
            VOICE_AGENT_LLM_TIMEOUT_S=HARD_S,
            VOICE_AGENT_RESPONSE_CACHE=True,
            VOICE_AGENT_CACHE_WARM_FAQ=False,
            VOICE_AGENT_BREAKER_FAILURES=100,  # every turn reaches the fault, none the breaker
        )
        caplog.set_level(logging.INFO)
        async with running(service) as url, call(url) as faulty, call(url) as templated:
            await faulty.start()
            await templated.start()
            asked = asyncio.ensure_future(timed_ask(faulty, QUESTION))
            quick, quick_s = await timed_ask(templated, TEMPLATED)  # while the fault lasts
            first, first_s = await asked
            again, again_s = await timed_ask(faulty, QUESTION)
    fallback = service.settings.fallback_text
    for frames, seconds in ((first, first_s), (again, again_s)):
        done = frames[-1]
        assert seconds <= HARD_S + scaled(0.1), f"{fault}: answered in {seconds:.3f} s"
        if fault in ANSWERED:
            assert done["text"].endswith("We deliver for free.")
        else:
            assert done["text"].endswith(fallback), f"{fault}: {done['text']!r}"
            assert done["source"] != "cache"  # a failed or cut answer was never stored
    if fault in ANSWERED:
        assert first[-1]["source"] == "llm"
    assert quick[-1]["source"] == "quick" and quick_s < HARD_S
    assert not [r for r in caplog.records if r.exc_info], f"{fault}: a traceback was logged"
