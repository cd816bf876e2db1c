"""The native protocol over a real WebSocket against the app on a free port (fake LLM with set
latencies, real encoder and demo knowledge base)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
import websockets

from voice_agent.server.service import Service
from voice_agent.tiers.chain import ResponderChain
from voice_agent.types import HangUp, Transfer

from ..conftest import call
from ..fakes import FailingTier, FakeLLM, ScriptedTier, scaled

pytestmark = pytest.mark.model  # the real encoder embeds every question


async def test_a_call_starts_streams_an_answer_and_ends(
    make_service: Callable[..., Service], running: Any
) -> None:
    service = make_service(FakeLLM())
    async with running(service) as url, call(url) as client:
        ready = await client.start(call_id="call-1", metadata={"from": "+15550100"})
        assert ready == {
            "type": "call.ready",
            "call_id": "call-1",
            "state": "answer",
            "mode": "enabled",
        }
        frames = await client.ask("What time do you open on Saturday?")
        deltas = [f for f in frames if f["type"] == "agent.delta"]
        done = frames[-1]
        assert len(deltas) > 1 and all(d["turn_id"] == 1 for d in deltas)
        assert done["type"] == "agent.done" and done["turn_id"] == 1
        assert done["text"] == "".join(d["text"] for d in deltas)
        assert done["source"] == "llm" and done["state"] == "answer"
        latency = done["latency_ms"]
        for stage in ("first_token", "total", "embedding", "retrieval", "llm_first_token"):
            assert latency[stage] >= 0, stage
        assert latency["first_token"] <= latency["total"]
        assert "hours" in done["detail"]["passages"] or "faq" in done["detail"]["passages"]

        await client.send({"type": "call.end"})
        assert await client.recv() == {"type": "call.ended", "reason": "caller_hangup"}
        with pytest.raises(websockets.ConnectionClosedOK):
            await client.recv()
        assert client.ws.close_code == 1000


async def test_call_id_is_made_up_when_the_client_gives_none(
    make_service: Callable[..., Service], running: Any
) -> None:
    async with running(make_service()) as url, call(url) as client:
        ready = await client.start()
        assert len(ready["call_id"]) == 32


BAD_FRAMES = [
    ("{not json", "invalid_json"),
    ("[1, 2]", "invalid_frame"),
    (json.dumps({"text": "no type"}), "invalid_frame"),
    (json.dumps({"type": "user.shout", "text": "hi"}), "unknown_type"),
    (json.dumps({"type": "user.utterance"}), "invalid_frame"),
    (json.dumps({"type": "user.utterance", "text": 5}), "invalid_frame"),
    (json.dumps({"type": "user.dtmf", "digit": "x"}), "invalid_frame"),
    (json.dumps({"type": "user.dtmf"}), "invalid_frame"),
    (json.dumps({"type": "user.utterance", "text": "a" * 3000}), "utterance_too_long"),
    (json.dumps({"type": "user.utterance", "text": "a" * 70_000}), "frame_too_large"),
    (b"\x00\x01binary", "binary_not_supported"),
    (json.dumps({"type": "call.start"}), "call_already_started"),
]


@pytest.mark.parametrize(("frame", "code"), BAD_FRAMES, ids=[c for _, c in BAD_FRAMES])
async def test_a_bad_frame_gets_an_error_frame_and_the_call_goes_on(
    make_service: Callable[..., Service], running: Any, frame: str | bytes, code: str
) -> None:
    async with running(make_service()) as url, call(url) as client:
        await client.start()
        await client.send(frame)
        error = await client.recv()
        assert error["type"] == "error" and error["code"] == code
        assert error["message"]
        frames = await client.ask("Do you deliver?")
        assert frames[-1]["type"] == "agent.done" and frames[-1]["source"] == "llm"


async def test_missing_fields_are_named_in_the_error(
    make_service: Callable[..., Service], running: Any
) -> None:
    async with running(make_service()) as url, call(url) as client:
        await client.start()
        await client.send({"type": "user.utterance"})
        error = await client.recv()
        assert "text" in error["message"] and "required" in error["message"]


async def test_anything_before_call_start_is_refused_then_the_call_can_start(
    make_service: Callable[..., Service], running: Any
) -> None:
    async with running(make_service()) as url, call(url) as client:
        await client.send({"type": "user.utterance", "text": "hello"})
        assert (await client.recv())["code"] == "call_not_started"
        assert (await client.start())["type"] == "call.ready"


async def test_unknown_fields_are_ignored_and_numbers_may_come_as_numbers(
    make_service: Callable[..., Service], running: Any
) -> None:
    async with running(make_service()) as url, call(url) as client:
        ready = await client.start(call_id=1234, vendor_extra={"x": 1})
        assert ready["call_id"] == "1234"
        await client.send({"type": "user.dtmf", "digit": 5, "duration_ms": 120})
        frames = await client.ask("Where are you located?")
        assert all(f["type"] != "error" for f in frames)


async def test_dtmf_digits_are_accepted_without_a_reply(
    make_service: Callable[..., Service], running: Any
) -> None:
    async with running(make_service()) as url, call(url) as client:
        await client.start()
        for digit in "12#*":
            await client.send({"type": "user.dtmf", "digit": digit})
        frames = await client.ask("Hi")
        assert [f["type"] for f in frames if f["type"] not in ("agent.delta",)] == ["agent.done"]


async def test_partial_utterances_do_not_start_a_turn(
    make_service: Callable[..., Service], running: Any
) -> None:
    llm = FakeLLM()
    async with running(make_service(llm)) as url, call(url) as client:
        await client.start()
        await client.send({"type": "user.utterance", "text": "do you", "final": False})
        frames = await client.ask("Do you deliver?")
        assert {f["turn_id"] for f in frames} == {1}
        assert len(llm.calls) == 1


async def test_a_new_final_utterance_cancels_the_turn_in_progress(
    make_service: Callable[..., Service], running: Any
) -> None:
    llm = FakeLLM(tokens=["word "] * 200, token_interval_s=scaled(0.02))
    service = make_service(
        llm,
        VOICE_AGENT_LLM_TIMEOUT_S=60,
        VOICE_AGENT_LLM_MAX_TOKENS=1000,
        VOICE_AGENT_ANSWER_MAX_SENTENCES=20,
    )
    async with running(service) as url, call(url) as client:
        await client.start()
        await client.send({"type": "user.utterance", "text": "Tell me everything"})
        first = await client.recv()
        assert first == {"type": "agent.delta", "turn_id": 1, "text": "word"}
        llm.tokens = ["Second ", "answer."]
        llm.token_interval_s = 0
        frames = await client.ask("Actually, do you deliver?")
        done = frames[-1]
        assert done["turn_id"] == 2 and done["text"] == "Second answer."
        assert all(f["turn_id"] == 2 for f in frames if f["type"] == "agent.done")
        assert llm.closed >= 1  # the first stream was closed
        # The history kept only what the caller was sent of the cut-off turn.
        prompt = llm.calls[1]
        assert prompt[-3].content == "Tell me everything"
        assert prompt[-2].role == "assistant" and prompt[-2].content.startswith("word")
        assert len(prompt[-2].content.split()) < 200


async def test_an_interrupt_stops_the_turn_and_history_keeps_only_what_was_heard(
    make_service: Callable[..., Service], running: Any
) -> None:
    llm = FakeLLM(
        tokens=["Our ", "hours ", "are "] + ["long "] * 200, token_interval_s=scaled(0.02)
    )
    service = make_service(llm, VOICE_AGENT_LLM_TIMEOUT_S=60, VOICE_AGENT_LLM_MAX_TOKENS=1000)
    async with running(service) as url, call(url) as client:
        await client.start()
        await client.send({"type": "user.utterance", "text": "What are your hours?"})
        await client.recv()
        await client.send({"type": "user.interrupt", "heard": "Our hours"})
        await asyncio.sleep(scaled(0.1))
        assert llm.closed == 1
        sent_after_interrupt = llm.tokens_sent
        await asyncio.sleep(scaled(0.1))
        assert llm.tokens_sent == sent_after_interrupt < 200
        llm.tokens = ["Yes."]
        llm.token_interval_s = 0
        frames = await client.ask("Do you deliver?")
        # Nothing more was sent for the interrupted turn.
        assert {f["turn_id"] for f in frames} == {2}
        prompt = llm.calls[1]
        assert [m.content for m in prompt[-3:-1]] == ["What are your hours?", "Our hours"]


async def test_an_interrupt_after_the_answer_trims_what_the_caller_did_not_hear(
    make_service: Callable[..., Service], running: Any
) -> None:
    llm = FakeLLM()
    async with running(make_service(llm)) as url, call(url) as client:
        await client.start()
        await client.ask("When do you open on Saturday?")
        await client.send({"type": "user.interrupt", "heard": "Maple Street"})
        await client.ask("And on Sunday?")
        assert llm.calls[1][-2].content == "Maple Street"


async def test_an_action_reaches_the_frontend_and_hangup_ends_the_call(
    make_service: Callable[..., Service], running: Any
) -> None:
    service = make_service()
    tier = ScriptedTier(text="Goodbye!", actions=[HangUp()])
    service = replace(service, responder=ResponderChain([tier], fallback_text="sorry"))
    async with running(service) as url, call(url) as client:
        await client.start()
        frames = await client.ask("bye")
        assert frames[-1]["source"] == "flow"
        assert await client.recv() == {"type": "agent.action", "turn_id": 1, "action": "hangup"}
        assert await client.recv() == {"type": "call.ended", "reason": "agent_hangup"}
        with pytest.raises(websockets.ConnectionClosedOK):
            await client.recv()


async def test_a_transfer_action_carries_its_parameters(
    make_service: Callable[..., Service], running: Any
) -> None:
    service = make_service()
    tier = ScriptedTier(text="Connecting you.", actions=[Transfer("+15550100")])
    service = replace(service, responder=ResponderChain([tier], fallback_text="sorry"))
    async with running(service) as url, call(url) as client:
        await client.start()
        await client.ask("a person please")
        action = await client.recv()
        assert action == {
            "type": "agent.action",
            "turn_id": 1,
            "action": "transfer",
            "to": "+15550100",
        }


async def test_a_failing_turn_speaks_the_fallback_and_touches_no_other_call(
    make_service: Callable[..., Service], running: Any
) -> None:
    service = make_service(FakeLLM())
    healthy = service.responder
    failing = FailingTier(only_call="broken")
    service = replace(service, responder=ResponderChain([failing, *healthy.tiers], "sorry"))
    async with running(service) as url, call(url) as broken:
        await broken.start(call_id="broken")
        frames = await broken.ask("hello")
        assert frames[-1]["source"] == "fallback"
        assert frames[-1]["text"] == service.settings.fallback_text
        assert frames[-1]["detail"]["reason"] == "internal_error"
        async with call(url) as other:
            await other.start()
            await broken.send("{garbage")
            assert (await broken.recv())["code"] == "invalid_json"
            frames = await other.ask("Do you deliver?")
            assert frames[-1]["source"] == "llm"
        # The broken call itself goes on: every turn still gets a spoken answer.
        assert (await broken.ask("Do you deliver?"))[-1]["source"] == "fallback"


async def test_concurrent_calls_each_get_their_own_answers(
    make_service: Callable[..., Service], running: Any
) -> None:
    llm = FakeLLM(token_interval_s=scaled(0.005))
    async with running(make_service(llm)) as url:

        async def one(n: int) -> dict[str, Any]:
            async with call(url) as client:
                await client.start(call_id=f"c{n}")
                return (await client.ask(f"Question {n}: do you deliver?"))[-1]

        results = await asyncio.gather(*(one(n) for n in range(8)))
        assert all(r["source"] == "llm" and r["turn_id"] == 1 for r in results)


async def test_health_reports_the_knowledge_base_and_breaker(
    make_service: Callable[..., Service], running: Any
) -> None:
    import httpx

    async with running(make_service()) as url, httpx.AsyncClient(base_url=url) as http:
        health = (await http.get("/healthz")).json()
        assert health["status"] == "ok" and health["breaker"] == "closed"
        assert health["knowledge"]["documents"] >= 30


async def test_hanging_up_mid_answer_stops_the_generation(
    make_service: Callable[..., Service], running: Any
) -> None:
    llm = FakeLLM(tokens=["word "] * 500, token_interval_s=scaled(0.01))
    service = make_service(llm, VOICE_AGENT_LLM_TIMEOUT_S=60, VOICE_AGENT_LLM_MAX_TOKENS=1000)
    async with running(service) as url:
        async with call(url) as client:
            await client.start()
            await client.send({"type": "user.utterance", "text": "Tell me everything"})
            await client.recv()
        # The socket is gone: the turn's work must stop, not run to its end.
        for _ in range(100):
            if llm.closed:
                break
            await asyncio.sleep(scaled(0.02))
        assert llm.closed == 1
        sent = llm.tokens_sent
        await asyncio.sleep(scaled(0.1))
        assert llm.tokens_sent == sent < 500


async def test_words_split_across_tokens_reach_the_client_unbroken(
    make_service: Callable[..., Service], running: Any
) -> None:
    llm = FakeLLM(
        tokens=["I", "'m", " at", " 418", " Bir", "ch", " Avenue", ",", " Spring", "field", "."]
    )
    async with running(make_service(llm)) as url, call(url) as client:
        await client.start()
        done = (await client.ask("Where are you?"))[-1]
        assert done["text"] == "I'm at 418 Birch Avenue, Springfield."
