"""The response cache in the running service, over the native protocol: what is served from
it and how it says so, and everything that must never be stored (other states, fallbacks,
timeouts, cut-off answers, the caller's own data); re-ingesting and flushing."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from voice_agent.cache.warming import WarmAnswer, generate, read_warm_file, write_warm_file
from voice_agent.errors import ConfigError
from voice_agent.server.service import Service
from voice_agent.tiers.cache import why_not_stored
from voice_agent.tiers.chain import say
from voice_agent.turn import TurnRecord
from voice_agent.types import Reply, TurnRequest, Vector
from voice_agent.utterance import Utterance

from ..conftest import CallClient, call
from ..fakes import FakeLLM, scaled

pytestmark = pytest.mark.model  # the real encoder embeds questions and answers

DELIVERY = ("We ", "deliver ", "prescriptions ", "within ", "5 ", "miles.")


@pytest.fixture
def cached(make_service: Callable[..., Service]) -> Callable[..., Service]:
    """A service with the cache on (FAQ warming off unless asked: it answers by itself)."""

    def make(llm: FakeLLM, **overrides: Any) -> Service:
        overrides.setdefault("VOICE_AGENT_CACHE_WARM_FAQ", False)
        return make_service(llm, VOICE_AGENT_RESPONSE_CACHE=True, **overrides)

    return make


async def ask(client: CallClient, service: Service, text: str) -> dict[str, Any]:
    """One turn, then wait for the answer to be stored (stores run after the turn)."""
    done = (await client.ask(text))[-1]
    assert service.cache is not None
    assert await service.cache.drain(scaled(5))
    return done


def entries(service: Service) -> int:
    assert service.cache is not None
    return len(service.cache.cache)


async def test_a_repeated_question_is_served_from_the_cache_and_says_so(
    cached: Callable[..., Service], running: Any
) -> None:
    llm = FakeLLM(tokens=DELIVERY)
    service = cached(llm)
    async with running(service) as url, call(url) as client:
        await client.start()
        first = await ask(client, service, "Do you deliver prescriptions?")
        assert first["source"] == "llm" and first["detail"]["cache_stored"] is True
        assert first["detail"]["cache"]["miss"]["reason"] == "empty"
        exact = await ask(client, service, "do you deliver prescriptions")
        semantic = await ask(client, service, "Can you deliver my prescriptions?")
    assert len(llm.calls) == 1
    assert (
        exact["source"] == "cache" and exact["text"] == "We deliver prescriptions within 5 miles."
    )
    assert exact["detail"]["cache"]["kind"] == "exact"
    assert exact["detail"]["cache"]["stored_for"] == "Do you deliver prescriptions?"
    assert exact["detail"]["cache"]["age_s"] >= 0
    assert semantic["source"] == "cache" and semantic["detail"]["cache"]["kind"] == "semantic"
    assert 0.88 <= semantic["detail"]["cache"]["similarity"] < 1
    assert "cache" in semantic["latency_ms"]


async def test_a_near_miss_about_another_thing_goes_to_the_llm(
    cached: Callable[..., Service], running: Any
) -> None:
    llm = FakeLLM(tokens=("Sending ", "to ", "Europe ", "costs ", "5 ", "dollars."))
    service = cached(llm)
    async with running(service) as url, call(url) as client:
        await client.start()
        await ask(client, service, "what is the fee to send money to Europe")
        other = await ask(client, service, "what is the fee to send money to Canada")
    assert other["source"] == "llm" and len(llm.calls) == 2


async def test_fallbacks_and_timeouts_are_never_stored(
    cached: Callable[..., Service], running: Any
) -> None:
    llm = FakeLLM(fail=True)
    service = cached(
        llm,
        VOICE_AGENT_BREAKER_FAILURES=100,
        VOICE_AGENT_FIRST_TOKEN_BUDGET_S=scaled(0.1),
        VOICE_AGENT_LLM_TIMEOUT_S=scaled(0.3),
    )
    async with running(service) as url, call(url) as client:
        await client.start()
        failed = await ask(client, service, "Do you deliver prescriptions?")
        llm.fail, llm.first_token_s = False, scaled(1.0)
        timed_out = await ask(client, service, "Do you deliver prescriptions?")
    assert failed["source"] == "fallback" and failed["detail"]["cache_stored"] is False
    assert timed_out["source"] == "fallback", timed_out
    assert entries(service) == 0


async def test_a_state_marked_not_cacheable_neither_stores_nor_serves(
    cached: Callable[..., Service], running: Any, tmp_path: Path
) -> None:
    flow = tmp_path / "private.yaml"
    flow.write_text(
        "name: private\nstart: answer\n"
        "states:\n"
        "  answer:\n"
        '    task: "Answer questions about the caller\'s account."\n'
        "    cacheable: false\n"
        "    on: {goodbye: bye}\n"
        "  bye: {say: Goodbye!, action: hangup}\n"
    )
    llm = FakeLLM(tokens=DELIVERY)
    service = cached(llm, VOICE_AGENT_FLOW_PATH=str(flow), VOICE_AGENT_DEFAULT_FLOW="private")
    async with running(service) as url, call(url) as client:
        await client.start()
        first = await ask(client, service, "Do you deliver prescriptions?")
        again = await ask(client, service, "Do you deliver prescriptions?")
    assert (first["source"], again["source"]) == ("llm", "llm")
    assert entries(service) == 0 and len(llm.calls) == 2


async def test_answers_that_carry_the_callers_own_data_are_never_stored(
    cached: Callable[..., Service], running: Any
) -> None:
    llm = FakeLLM(tokens=("Refill ", "123456 ", "is ", "ready."))
    service = cached(llm, VOICE_AGENT_DEFAULT_FLOW="pharmacy")
    async with running(service) as url, call(url) as client:
        await client.start(metadata={"account": "ACME-778"})
        await client.until("agent.done")  # greeting
        for text in ("I need a refill", "1 2 3 4 5 6", "yes that's right"):
            await client.ask(text)
        slot_in_answer = await ask(client, service, "When will my refill be ready?")
        llm.tokens = ("Account ", "ACME-778 ", "is ", "active.")
        metadata_in_answer = await ask(client, service, "Is my account active?")
        llm.tokens = DELIVERY
        slot_in_question = await ask(client, service, "Is prescription 123456 delivered?")
        follow_up = await ask(client, service, "and on Sunday?")
    for done in (slot_in_answer, metadata_in_answer, slot_in_question, follow_up):
        assert done["source"] == "llm" and done["detail"]["cache_stored"] is False, done
    assert entries(service) == 0


async def test_an_answer_cut_off_by_the_caller_is_not_stored(
    cached: Callable[..., Service], running: Any
) -> None:
    llm = FakeLLM(tokens=["We ", "deliver "] + ["far "] * 200, token_interval_s=scaled(0.02))
    service = cached(llm, VOICE_AGENT_LLM_TIMEOUT_S=60, VOICE_AGENT_LLM_MAX_TOKENS=1000)
    async with running(service) as url, call(url) as client:
        await client.start()
        await client.send({"type": "user.utterance", "text": "Do you deliver?"})
        await client.recv()
        await client.send({"type": "user.interrupt", "heard": "We deliver"})
        await asyncio.sleep(scaled(0.1))
        assert service.cache is not None and await service.cache.drain(scaled(5))
    assert llm.closed == 1 and entries(service) == 0


async def test_reingesting_the_knowledge_base_stops_old_answers(
    cached: Callable[..., Service], running: Any
) -> None:
    llm = FakeLLM(tokens=DELIVERY)
    service = cached(llm, VOICE_AGENT_CACHE_WARM_FAQ=True)
    async with running(service) as url:
        async with call(url) as client:
            await client.start()
            await ask(client, service, "Do you deliver prescriptions?")
            assert (await ask(client, service, "Do you deliver prescriptions?"))["source"] == (
                "cache"
            )
        async with httpx.AsyncClient(base_url=url) as http:
            response = await http.post(
                "/v1/ingest",
                json={
                    "documents": [
                        {
                            "id": "delivery",
                            "text": "Delivery now reaches 10 miles.\n\n"
                            "Q: Do you sell stamps?\nA: Yes, at the front counter.",
                        }
                    ]
                },
            )
        assert response.status_code == 200 and response.json()["cache_dropped"] >= 1
        async with call(url) as client:
            await client.start()
            after = await ask(client, service, "Do you deliver prescriptions?")
            stamps = await ask(client, service, "Do you sell stamps?")
    assert after["source"] == "llm" and len(llm.calls) == 2
    assert stamps["source"] == "cache" and stamps["detail"]["cache"]["kind"] == "warm"
    assert stamps["text"] == "Yes, at the front counter."


async def test_flush_empties_the_cache(cached: Callable[..., Service], running: Any) -> None:
    llm = FakeLLM(tokens=DELIVERY)
    service = cached(llm)
    async with running(service) as url:
        async with call(url) as client:
            await client.start()
            await ask(client, service, "Do you deliver prescriptions?")
        async with httpx.AsyncClient(base_url=url) as http:
            flushed = (await http.post("/v1/admin/cache/flush", json={})).json()
            health = (await http.get("/healthz")).json()
        async with call(url) as client:
            await client.start()
            again = await ask(client, service, "Do you deliver prescriptions?")
    assert flushed == {"flushed": 1, "shared": None}
    assert health["cache"]["entries"] == 0
    assert again["source"] == "llm"


async def test_faq_pairs_answer_before_any_caller_asked(
    cached: Callable[..., Service], running: Any
) -> None:
    llm = FakeLLM()
    service = cached(llm, VOICE_AGENT_CACHE_WARM_FAQ=True)
    async with running(service) as url, call(url) as client:
        await client.start()
        done = await ask(client, service, "What time do you open on Saturday?")
    assert done["source"] == "cache" and done["detail"]["cache"]["kind"] == "warm"
    assert done["text"].startswith("Maple Street Pharmacy opens at 9 AM on Saturdays")
    assert llm.calls == []


async def test_in_disabled_mode_the_cache_neither_serves_nor_stores(
    cached: Callable[..., Service], running: Any
) -> None:
    llm = FakeLLM(tokens=DELIVERY)
    service = cached(llm, LATENCY_OPTIMIZATION_MODE="disabled", VOICE_AGENT_CACHE_WARM_FAQ=True)
    warmed = entries(service)
    async with running(service) as url, call(url) as client:
        await client.start()
        first = await ask(client, service, "What time do you open on Saturday?")
        await ask(client, service, "Do you deliver prescriptions?")
        again = await ask(client, service, "Do you deliver prescriptions?")
    assert (first["source"], again["source"]) == ("llm", "llm")
    assert warmed > 0 and entries(service) == warmed


async def test_answers_generated_offline_are_served_from_the_warm_file(
    cached: Callable[..., Service], running: Any, tmp_path: Path
) -> None:
    maker = cached(FakeLLM(tokens=DELIVERY))
    answers = [
        WarmAnswer(question, reply.answer or "", "qa", "answer")
        async for question, reply in generate(
            maker.responder, maker.encoder.embed, ["Do you deliver prescriptions?"], "qa", "answer"
        )
    ]
    warm_file = tmp_path / "warm.jsonl"
    assert write_warm_file(warm_file, answers) == 1
    llm = FakeLLM()
    service = cached(llm, VOICE_AGENT_CACHE_WARM_FILE=str(warm_file))
    async with running(service) as url, call(url) as client:
        await client.start()
        done = await ask(client, service, "Can you deliver my prescriptions?")
    assert done["source"] == "cache" and done["detail"]["cache"]["kind"] == "warm"
    assert done["text"] == "We deliver prescriptions within 5 miles." and llm.calls == []


def test_a_malformed_warm_file_is_refused_with_its_line(tmp_path: Path) -> None:
    warm_file = tmp_path / "warm.jsonl"
    warm_file.write_text('{"question": "q", "answer": "a"}\n{"question": "no answer"}\n')
    with pytest.raises(ConfigError, match=r"warm.jsonl:2: expected a JSON object"):
        read_warm_file(warm_file)


async def test_explain_shows_the_caches_verdict_and_the_neighbours_it_judged(
    cached: Callable[..., Service], running: Any
) -> None:
    service = cached(FakeLLM(tokens=DELIVERY))
    async with running(service) as url:
        async with call(url) as client:
            await client.start()
            await ask(client, service, "Do you deliver prescriptions?")
        async with httpx.AsyncClient(base_url=url) as http:
            hit = await http.post("/v1/explain", json={"text": "can you deliver my prescriptions"})
            miss = await http.post("/v1/explain", json={"text": "where do I park"})
            negated = await http.post(
                "/v1/explain", json={"text": "you don't deliver prescriptions?"}
            )
    hit_cache, miss_cache = hit.json()["cache"], miss.json()["cache"]
    refused = negated.json()["cache"]
    assert not refused["hit"] and refused["reason"] == "negation differs"
    assert refused["neighbours"][0]["refused_by"] == "negation differs"
    assert hit_cache["neighbours"][0]["refused_by"] is None
    assert hit_cache["neighbourhood"]["threshold"] == service.settings.cache_threshold
    assert hit.json()["served_by"] == "cache" and hit_cache["kind"] == "semantic"
    assert hit_cache["stored_for"] == "Do you deliver prescriptions?"
    assert hit_cache["neighbours"][0]["question"] == "Do you deliver prescriptions?"
    assert miss.json()["served_by"] == "knowledge" and not miss_cache["hit"]
    assert miss_cache["reason"] and miss_cache["neighbours"][0]["similarity"] < 0.88


async def test_an_answer_that_scores_poorly_or_a_pointing_question_is_not_stored(
    cached: Callable[..., Service], running: Any
) -> None:
    llm = FakeLLM(tokens=("You're ", "not ", "allowed ", "to ", "ask ", "that ", "again."))
    service = cached(llm)
    async with running(service) as url, call(url) as client:
        await client.start()
        nonsense = await ask(client, service, "Do you deliver prescriptions?")
        llm.tokens = DELIVERY
        pointing = await ask(client, service, "How much is it?")
    assert service.cache is not None
    assert nonsense["detail"]["cache_stored"] is True and service.cache.rejected == 1
    assert pointing["detail"]["cache_stored"] is False
    assert entries(service) == 0


async def test_an_answer_that_contradicts_its_passages_is_not_stored(
    cached: Callable[..., Service], running: Any
) -> None:
    """The bundled model once told a caller the pharmacy does not deliver; the knowledge base
    says it delivers for free. Said once, that is one wrong call; cached, every caller's."""
    llm = FakeLLM(tokens=("No, ", "we ", "do ", "not ", "deliver ", "prescriptions."))
    service = cached(llm)
    async with running(service) as url, call(url) as client:
        await client.start()
        wrong = await ask(client, service, "Do you deliver prescriptions?")
        llm.tokens = DELIVERY
        right = await ask(client, service, "Can you deliver my prescriptions?")
    assert wrong["detail"]["passages"][0] == "delivery"
    assert wrong["detail"]["cache_stored"] is False
    assert right["detail"]["cache_stored"] is True and entries(service) == 1


@pytest.mark.parametrize(
    ("question", "answer"),
    [
        ("send it to jane.doe@example.com", "We will write to jane.doe@example.com today."),
        ("is 4111 1111 1111 1111 on file?", "Yes, that card is on file."),
        ("what are your hours?", "Call us on 555-010-0199 for the hours."),
    ],
)
def test_an_answer_or_question_with_the_callers_data_is_never_cached(
    question: str, answer: str
) -> None:
    vector = np.ones(4, dtype=np.float32)
    utterance = Utterance(question, embed=given_vector, vector=vector)
    request = TurnRequest("c1", 1, utterance, "answer", (), TurnRecord("c1", 1))
    reply = Reply(source="llm", pieces=say(answer), answer=answer)
    assert why_not_stored(request, reply) == "contains the caller's own data"
    plain = Utterance("what are your hours?", embed=given_vector, vector=vector)
    ok = TurnRequest("c1", 1, plain, "answer", (), TurnRecord("c1", 1))
    assert why_not_stored(ok, Reply(source="llm", pieces=say("9 to 5."), answer="9 to 5.")) is None


async def given_vector(text: str) -> Vector:
    raise AssertionError("the vector is given")
