"""Redis down, flapping and slow; the telemetry file's disk full; the encoder slow. Bound held
in each: every turn of a call is answered (not the fallback) within the state's hard limit +
100 ms, the fault is counted or warned about at a bounded rate, and the service recovers
when the dependency does."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import pytest

from voice_agent.rag.encoder import Encoder
from voice_agent.server.service import Service

from ..conftest import call
from ..fakes import FakeLLM, scaled
from ..redis_server import RedisServer, free_port

pytestmark = pytest.mark.model

HARD_S = 1.5
BUDGETS = {
    "VOICE_AGENT_FIRST_TOKEN_BUDGET_S": 0.5,
    "VOICE_AGENT_LLM_TIMEOUT_S": HARD_S,
    "VOICE_AGENT_RESPONSE_CACHE": True,
    "VOICE_AGENT_CACHE_WARM_FAQ": False,
    "VOICE_AGENT_CACHE_MIN_QUALITY": 0,  # every answer is stored (and shared): Redis is used
    "VOICE_AGENT_MAX_TURNS_PER_MINUTE": 0,
}
QUESTIONS = [
    "Do you deliver prescriptions to my house?",
    "Can I transfer a prescription from another pharmacy?",
    "Do you take my insurance plan?",
    "Is there parking near the store?",
    "Can I get a flu shot without an appointment?",
]


async def answered_in_time(
    url: str, rounds: int = 2, questions: Sequence[str] = QUESTIONS
) -> list[dict[str, Any]]:
    """A call asks every question `rounds` times; each answer must be a real one, whole
    within the hard limit + 100 ms."""
    answers = []
    async with call(url) as client:
        await client.start()
        for question in list(questions) * rounds:
            started = time.perf_counter()
            done = (await client.ask(question))[-1]
            took = time.perf_counter() - started
            assert took <= HARD_S + scaled(0.1), f"{question!r} took {took:.3f} s"
            assert done["source"] in ("llm", "cache"), done
            answers.append(done)
    return answers


def llm() -> FakeLLM:
    return FakeLLM(tokens=("We ", "can ", "help ", "with ", "that."), first_token_s=0.05)


async def test_with_redis_down_every_turn_is_answered_from_this_process(
    make_service: Callable[..., Service], running: Any, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    service = make_service(
        llm(), VOICE_AGENT_REDIS_URL=url, VOICE_AGENT_REDIS_TIMEOUT_S=0.2, **BUDGETS
    )
    async with running(service) as base:
        answers = await answered_in_time(base)
    assert any(a["source"] == "cache" for a in answers)  # the local cache serves on its own
    shared = service.cache.shared if service.cache is not None else None
    assert shared is not None and shared.stats.errors > 0 and not shared.stats.connected
    assert shared.stats.dropped > 0  # answers it could not share, dropped, not queued up
    assert not [r for r in caplog.records if r.exc_info]


async def test_with_redis_flapping_turns_go_on_and_sharing_comes_back(
    make_service: Callable[..., Service], running: Any, redis_server: RedisServer
) -> None:
    service = make_service(
        llm(), VOICE_AGENT_REDIS_URL=redis_server.url, VOICE_AGENT_REDIS_TIMEOUT_S=0.2, **BUDGETS
    )
    stop = asyncio.Event()

    async def flap() -> None:
        while not stop.is_set():
            await asyncio.sleep(0.3)
            redis_server.kill()
            await asyncio.sleep(0.3)
            await asyncio.to_thread(redis_server.start)

    async with running(service) as base:
        flapping = asyncio.ensure_future(flap())
        try:
            await answered_in_time(base)
        finally:
            stop.set()
            await flapping
        shared = service.cache.shared if service.cache is not None else None
        assert shared is not None and shared.stats.errors > 0
        deadline = time.monotonic() + scaled(25)  # the reader's backoff tops out at 10 s
        while not shared.stats.connected:
            assert time.monotonic() < deadline, "the shared cache never reconnected"
            await asyncio.sleep(0.2)
        published = shared.stats.published
        async with call(base) as client:
            await client.start()
            for question in NEW_QUESTIONS:  # each new, so each answer is stored and shared
                await client.ask(question)
                await asyncio.sleep(1.0)
                if shared.stats.published > published:
                    break
        assert shared.stats.published > published, "answers are not shared again"


NEW_QUESTIONS = [
    "Do you sell vitamins?",
    "Is there a restroom for customers?",
    "Do you print photos?",
    "Can I recycle old batteries with you?",
    "Do you rent wheelchairs?",
    "Can I pay a utility bill at your counter?",
    "Do you offer blood pressure checks?",
    "Do you carry baby formula?",
    "Is there a notary on site?",
    "Can I buy stamps here?",
    "Do you sell reading glasses?",
    "Can I return an opened item?",
    "Do you have a drive through?",
    "Can I bring my dog inside?",
    "Do you sell greeting cards?",
]


@asynccontextmanager
async def slow_proxy(target_port: int, delay_s: float) -> AsyncIterator[int]:
    """A TCP proxy that holds every chunk `delay_s` each way: every Redis command times out."""
    writers: list[asyncio.StreamWriter] = []
    handlers: list[asyncio.Task[Any]] = []

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while data := await reader.read(65536):
                await asyncio.sleep(delay_s)
                writer.write(data)
                await writer.drain()

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        handler = asyncio.current_task()
        assert handler is not None
        handlers.append(handler)
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", target_port)
        writers.extend((writer, up_writer))
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        for handler in handlers:
            handler.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)
        for writer in writers:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
        await server.wait_closed()


async def test_with_redis_slow_every_command_times_out_and_no_turn_waits(
    make_service: Callable[..., Service], running: Any, redis_server: RedisServer
) -> None:
    async with slow_proxy(redis_server.port, delay_s=1.0) as port:
        service = make_service(
            llm(),
            VOICE_AGENT_REDIS_URL=f"redis://127.0.0.1:{port}/0",
            VOICE_AGENT_REDIS_TIMEOUT_S=0.2,
            **BUDGETS,
        )
        async with running(service) as base:
            await answered_in_time(base)
            shared = service.cache.shared if service.cache is not None else None
            assert shared is not None
            deadline = time.monotonic() + scaled(10)
            while shared.stats.errors == 0:  # the reader's first command is still waiting
                assert time.monotonic() < deadline, "no Redis command timed out"
                await asyncio.sleep(0.1)
        assert shared.stats.published == 0 and not shared.stats.connected


async def test_with_the_telemetry_disk_full_calls_go_on_and_it_warns_once_a_minute(
    make_service: Callable[..., Service], running: Any, caplog: pytest.LogCaptureFixture
) -> None:
    service = make_service(llm(), VOICE_AGENT_TELEMETRY_FILE="/dev/full", **BUDGETS)
    caplog.set_level(logging.WARNING, logger="voice_agent.telemetry.json_lines")
    async with running(service) as base:
        answers = await answered_in_time(base)
    warnings = [r for r in caplog.records if r.name == "voice_agent.telemetry.json_lines"]
    assert len(answers) == 10 and len(warnings) == 1  # ten turns, all lines lost, one warning
    assert "No space left on device" in warnings[0].getMessage()


async def test_with_the_encoder_slow_turns_are_answered_by_words_alone_in_time(
    make_service: Callable[..., Service],
    running: Any,
    encoder: Encoder,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    service = make_service(llm(), VOICE_AGENT_EMBED_TIMEOUT_S=0.2, **BUDGETS)
    fast = encoder.encode_sync

    def slow(texts: Any) -> Any:
        time.sleep(1.0)  # the worker thread is starved: every batch takes a second
        return fast(texts)

    # Sentences the shared encoder has never embedded (it keeps the vectors it has made).
    unheard = [f"{q[:-1]}, asks caller {time.monotonic_ns()}?" for q in QUESTIONS]
    async with running(service) as base:
        monkeypatch.setattr(encoder, "encode_sync", slow)
        answers = await answered_in_time(base, rounds=1, questions=unheard)
    assert all(a["detail"].get("retrieval") == "lexical (encoder slow)" for a in answers)
