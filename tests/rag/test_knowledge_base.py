"""Hybrid retrieval over the demo knowledge base with the real encoder, and ingest while the
service runs."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from voice_agent.cli import main
from voice_agent.rag.documents import Document, load_documents
from voice_agent.rag.encoder import Encoder
from voice_agent.rag.knowledge_base import KnowledgeBase
from voice_agent.server.service import Service
from voice_agent.settings import DEMO_KB_PATH
from voice_agent.turn import TurnRecord

from ..conftest import call
from ..fakes import FakeLLM

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def demo_kb(encoder: Encoder) -> KnowledgeBase:
    kb = KnowledgeBase(encoder, top_k=5)
    kb.load(load_documents(DEMO_KB_PATH))
    return kb


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("What time do you close on Sunday?", {"hours", "faq"}),
        ("Where is the pharmacy?", {"location", "faq", "contact"}),
        ("How much is a flu shot without insurance?", {"prices", "vaccines", "faq"}),
        ("Can you deliver my medicine to my house?", {"delivery", "faq"}),
        ("Do you take Medicare part D?", {"medicare-part-d", "insurance", "faq"}),
        ("How do I move my prescription from another pharmacy?", {"transfers", "faq"}),
        ("Can I get something for my dog?", {"pet-medications", "faq"}),
        ("Where can I throw away old pills?", {"disposal", "faq"}),
    ],
)
async def test_the_passages_that_reach_the_prompt_include_the_right_document(
    demo_kb: KnowledgeBase, question: str, expected: set[str]
) -> None:
    record = TurnRecord("c", 1)
    passages = await demo_kb.retrieve(question, record)
    assert len(passages) == 5
    # The prompt gets the top three (VOICE_AGENT_PROMPT_PASSAGES).
    assert {p.doc_id for p in passages[:3]} & expected, [p.doc_id for p in passages]
    assert passages[0].score >= passages[-1].score
    assert {"embedding", "retrieval"} <= set(record.stages_ms)


async def test_added_documents_are_retrievable_and_replace_by_id(encoder: Encoder) -> None:
    kb = KnowledgeBase(encoder, top_k=3)
    kb.load([Document("hours", "Hours", "We open at nine in the morning every weekday.")])
    assert kb.version == 1
    await kb.add([Document("parrots", "Parrot care", "We sell seed mixes for parrots.")])
    assert kb.version == 2 and kb.document_count == 2
    passages = await kb.retrieve("food for my parrot")
    assert passages[0].doc_id == "parrots"
    await kb.add([Document("parrots", "Parrot care", "Parrot seed is sold out until May.")])
    assert kb.document_count == 2 and kb.chunk_count == 2
    passages = await kb.retrieve("food for my parrot")
    assert passages[0].text == "Parrot seed is sold out until May."


async def test_ingest_endpoint_adds_documents_without_a_restart(
    make_service: Callable[..., Service], running: Any
) -> None:
    llm = FakeLLM()
    async with running(make_service(llm)) as url:
        async with httpx.AsyncClient(base_url=url) as http:
            before = (await http.get("/healthz")).json()["knowledge"]
            response = await http.post(
                "/v1/ingest",
                json={
                    "documents": [
                        {
                            "id": "valet",
                            "title": "Valet parking",
                            "text": "Valet parking for the pharmacy costs 4 dollars.",
                        }
                    ]
                },
            )
            assert response.status_code == 200, response.text
            result = response.json()
            assert result["documents"] == before["documents"] + 1
            assert result["version"] == before["version"] + 1
            bad = await http.post("/v1/ingest", json={"documents": [{"id": "x"}]})
            assert bad.status_code == 422
        async with call(url) as client:
            await client.start()
            done = (await client.ask("How much is valet parking?"))[-1]
        assert done["detail"]["passages"][0] == "valet"
        assert "4 dollars" in llm.calls[-1][-1].content


async def test_the_ingest_command_posts_a_folder_to_the_service(
    make_service: Callable[..., Service], running: Any, tmp_path: Path
) -> None:
    import asyncio

    (tmp_path / "gift-cards.md").write_text("# Gift cards\n\nGift cards come in 25 dollar steps.")
    service = make_service()
    async with running(service) as url:
        code = await asyncio.to_thread(main, ["ingest", str(tmp_path), "--url", url])
        assert code == 0
    assert "gift-cards" in {p.doc_id for p in await service.knowledge.retrieve("gift card")}


def test_the_encoder_cache_returns_the_same_vectors_and_stays_bounded() -> None:
    from voice_agent.rag.encoder import load_sentence_model

    small = Encoder(load_sentence_model(), cache_size=2)
    first = small.encode_sync(["one", "two"])
    assert small.cached("one") is not None
    again = small.encode_sync(["two", "three"])
    assert (again[0] == first[1]).all()
    assert small.cached("one") is None  # evicted: least recently used
    off = Encoder(load_sentence_model(), cache_size=0)
    off.encode_sync(["one"])
    assert off.cached("one") is None


async def test_a_calls_sentence_is_encoded_before_background_work_waiting_ahead_of_it() -> None:
    """Quality scoring and ingest must not make a caller wait: their pieces go to the model
    only when no call's sentence waits."""
    from voice_agent.rag.encoder import BACKGROUND_PIECE, load_sentence_model

    encoder = Encoder(load_sentence_model(), cache_size=0)
    finished: list[str] = []

    async def background() -> None:
        texts = [f"background sentence number {i}" for i in range(BACKGROUND_PIECE * 20)]
        vectors = await encoder.encode_many(texts)
        assert vectors.shape == (len(texts), encoder.dimension)
        assert np.allclose(vectors[3], encoder.encode_sync([texts[3]])[0], atol=1e-3)
        finished.append("background")

    async def call() -> None:
        await asyncio.sleep(0)  # the background work is queued first
        vector = await encoder.embed("What time do you open on Saturday?")
        assert vector.shape == (encoder.dimension,)
        finished.append("call")

    await asyncio.gather(background(), call())
    assert (await encoder.encode_many([])).shape == (0, encoder.dimension)
    await encoder.aclose()
    assert finished == ["call", "background"]
