"""The whole service on its embedded defaults: the bundled SmolLM2 GGUF run by llama.cpp in its
own process, the bundled encoder, the demo knowledge base, over a real WebSocket, and the
`voice-agent call` command against it."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from voice_agent.cli import main
from voice_agent.llm.local import LocalModel, bundled_model_path, start_model_process
from voice_agent.llm.supervisor import ModelSupervisor
from voice_agent.rag.encoder import Encoder
from voice_agent.server.app import create_app
from voice_agent.server.build import build_service, model_supervisor_config
from voice_agent.server.service import Service
from voice_agent.settings import load_settings
from voice_agent.types import Message

from ..conftest import call, serve
from ..fakes import scaled

pytestmark = pytest.mark.model

UNSPEAKABLE = re.compile(r"https?://|www\.|[*#`\[\]]|^\s*[-•]\s", re.MULTILINE)


@pytest.fixture(scope="module")
def model_process() -> Iterator[ModelSupervisor]:
    """One model process for the module; each test talks to it with a client of its own
    (a client's connections belong to the event loop that made them)."""
    settings = load_settings(VOICE_AGENT_LLM_BACKEND="local")
    supervisor = start_model_process(bundled_model_path(), model_supervisor_config(settings))
    yield supervisor
    asyncio.run(supervisor.aclose())


@pytest.fixture
async def local_llm(model_process: ModelSupervisor) -> AsyncIterator[LocalModel]:
    llm = LocalModel(model_process, timeout_s=scaled(30), owns_supervisor=False)
    yield llm
    await llm.close()


@pytest.fixture
def real_service(encoder: Encoder, local_llm: LocalModel) -> Service:
    # Generous budgets: CI machines are slow and this test is about the answer, not speed.
    settings = load_settings(
        VOICE_AGENT_FIRST_TOKEN_BUDGET_S=scaled(10),
        VOICE_AGENT_LLM_TIMEOUT_S=scaled(30),
        VOICE_AGENT_LLM_STALL_TIMEOUT_S=scaled(10),
    )
    return build_service(settings, encoder=encoder, llm=local_llm)


async def test_the_bundled_model_streams_and_stops_when_closed(local_llm: LocalModel) -> None:
    messages = [Message("user", "Count from one to fifty in words.")]
    stream = local_llm.stream(messages, max_tokens=200)
    pieces = []
    async for piece in stream:
        pieces.append(piece)
        if len(pieces) == 3:
            break
    await stream.aclose()  # type: ignore[attr-defined]
    assert len(pieces) == 3
    # The model process is free again: a second generation completes.
    second = [p async for p in local_llm.stream([Message("user", "Say hi.")], max_tokens=8)]
    assert "".join(second).strip()


async def test_a_call_gets_spoken_answers_from_the_knowledge_base(real_service: Service) -> None:
    async with serve(create_app(service=real_service)) as url, call(url) as client:
        ready = await client.start()
        assert ready["state"] == "greet"  # the demo business's flow
        greeting = (await client.until("agent.done"))[-1]
        assert greeting["source"] == "flow"
        assert greeting["text"] == "Thanks for calling Maple Street Pharmacy. How can I help?"
        for question, documents in [
            ("What are your hours on Saturday?", {"hours", "faq"}),
            ("Do you deliver prescriptions?", {"delivery", "faq"}),
        ]:
            frames = await client.ask(question)
            done = frames[-1]
            assert done["source"] == "llm", done
            assert done["state"] == "answer"
            assert done["detail"]["llm"] == "local"
            assert set(done["detail"]["passages"][:3]) & documents
            assert done["text"].strip()
            assert not UNSPEAKABLE.search(done["text"]), done["text"]
            assert done["latency_ms"]["llm_first_token"] > 0


async def test_the_call_command_prints_each_answer_with_source_and_latency(
    real_service: Service, capsys: pytest.CaptureFixture[str]
) -> None:
    async with serve(create_app(service=real_service)) as url:
        code = await asyncio.to_thread(
            main, ["call", "--url", url, "--say", "Where are you located?"]
        )
    out = capsys.readouterr().out
    assert code == 0
    assert "you> Where are you located?" in out
    assert "agent> Thanks for calling Maple Street Pharmacy. How can I help?" in out
    assert re.search(r"\[(llm|cache), state answer\] first word \d+ ms, done \d+ ms", out), out
    assert "[call ended: caller_hangup]" in out


def test_the_bundled_model_file_is_found_without_importing_its_package() -> None:
    path = bundled_model_path()
    assert isinstance(path, Path) and path.suffix == ".gguf" and path.stat().st_size > 1_000_000
