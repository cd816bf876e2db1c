"""Quick responses with the shipped pack, its intent head and the real encoder: compound
utterances are never answered by a template; small talk in a call is, fast."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from quick_responses.responder import QuickResponder
from voice_agent.cli import main
from voice_agent.rag.encoder import Encoder
from voice_agent.server.build import build_quick_tier
from voice_agent.server.service import Service
from voice_agent.settings import load_settings

from ..conftest import CallClient, call
from ..fakes import FakeLLM

pytestmark = pytest.mark.model

COMPOUNDS = [
    "thanks, and what's the fee?",
    "thank you, and when do you close tomorrow?",
    "yes but I also need a refill",
    "yes, and what's the delivery fee?",
    "yeah, also can you check my prescription",
    "hello, I'd like to transfer my prescription",
    "hi, do you have the flu shot in stock?",
    "hi there, what time do you open on Sunday",
    "no, but I need to change my address",
    "no thanks, but what about my insurance?",
    "okay thanks, can you tell me the price of shingles vaccine",
    "great, and where do I park?",
    "bye, oh wait, is the pharmacy open on Christmas",
    "thanks so much, my number is 4 5 6 7 8 9",
    "yes, it's 123456",
    "sure, and how much is the savings club?",
    "hello, my prescription number is 55512",
    "thank you, what languages do you speak?",
    "good morning, I need a refill",
    "hold on, how much does delivery cost",
    "sorry, say that again and also tell me your hours",
    "are you a robot? and do you deliver?",
]

SMALL_TALK = {
    "hello": "greeting",
    "hi there, good morning": "greeting",
    "thank you so much": "thanks",
    "thanks a lot, that's very helpful": "thanks",
    "can you repeat that": "repeat",
    "sorry, I didn't catch that": "repeat",
    "hold on a second": "hold",
    "are you a real person": "are_you_a_bot",
    "bye, have a nice day": "goodbye",
    "yes": "affirm",
    "nope": "deny",
    "": "unintelligible",
    "(unintelligible audio)": "unintelligible",
}


@pytest.fixture(scope="module")
def quick(encoder: Encoder) -> QuickResponder:
    tier = build_quick_tier(load_settings(), encoder)
    assert tier is not None and tier.responder.head is not None
    return tier.responder


def decide(quick: QuickResponder, encoder: Encoder, text: str) -> Any:
    vector = encoder.encode_sync([text])[0] if quick.needs_vector(text) else None
    return quick.decide(text, vector)


@pytest.mark.parametrize("text", COMPOUNDS)
def test_a_compound_utterance_is_never_answered_by_a_template(
    quick: QuickResponder, encoder: Encoder, text: str
) -> None:
    decision = decide(quick, encoder, text)
    assert not decision.answer, decision


@pytest.mark.parametrize(("text", "intent"), list(SMALL_TALK.items()))
def test_plain_small_talk_is_answered(
    quick: QuickResponder, encoder: Encoder, text: str, intent: str
) -> None:
    decision = decide(quick, encoder, text)
    assert decision.answer and decision.intent == intent, decision


# Requests near a goodbye in meaning or words; the head of 2026-11-21 hung up on the first two.
NOT_GOODBYES = ["I'd like a coffee now", "go faster", "I have to go to the pharmacy tomorrow"]


@pytest.mark.parametrize("text", NOT_GOODBYES)
def test_a_request_near_a_goodbye_never_ends_the_call(
    quick: QuickResponder, encoder: Encoder, text: str
) -> None:
    decision = decide(quick, encoder, text)
    assert not (decision.answer and quick.pack.intents[decision.intent].ends_call), decision


def test_templates_that_end_the_call_answer_only_when_the_head_is_sure(
    quick: QuickResponder,
) -> None:
    ending = [spec for spec in quick.pack.intents.values() if spec.ends_call]
    assert ending and all(spec.threshold >= 0.9 for spec in ending)


def test_the_recognized_intent_is_reported_even_when_a_guard_stops_the_template(
    quick: QuickResponder, encoder: Encoder
) -> None:
    decision = decide(quick, encoder, "thanks so much, my number is 4 5 6 7 8 9")
    assert not decision.answer
    if decision.intent is not None:
        assert decision.guard is not None


async def talk(client: CallClient, text: str) -> dict[str, Any]:
    frames = await client.ask(text)
    done = frames[-1]
    assert done["latency_ms"]["first_token"] >= 0
    return done


async def test_small_talk_in_a_call_is_answered_by_templates(
    make_service: Callable[..., Service], running: Any
) -> None:
    llm = FakeLLM()
    service = make_service(llm)  # the qa flow: every turn goes to the tiers
    async with running(service) as url, call(url) as client:
        await client.start()
        hello = await talk(client, "hi there")
        assert (hello["source"], hello["detail"]["quick"]["intent"]) == ("quick", "greeting")
        assert hello["detail"]["quick"]["template"] == hello["text"]
        answer = await talk(client, "When do you open on Saturday?")
        assert answer["source"] == "llm"
        again = await talk(client, "sorry, can you say that again")
        assert again["source"] == "quick" and again["text"].endswith(answer["text"])
        hold = await talk(client, "hold on a second")
        assert (hold["source"], hold["detail"]["quick"]["intent"]) == ("quick", "hold")
        thanks = await talk(client, "thank you so much")
        assert thanks["detail"]["quick"]["intent"] == "thanks"
        thanks_again = await talk(client, "thanks")
        assert thanks_again["text"] != thanks["text"]  # the agent varies its wording
        assert len(llm.calls) == 1  # only the real question reached the LLM
        prompt = " ".join(m.content for m in llm.calls[0])
        assert "How can I help you today" not in prompt  # small talk stays out of the prompt


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


TALK_FLOW = """
name: talk
start: talk
states:
  talk:
    task: "Answer questions."
    on: {human_agent: person}
  person: {say: "Connecting you.", action: {transfer: "+15550100"}}
"""

PICKY_FLOW = """
name: picky
start: picky
states:
  picky:
    task: "Answer questions."
    quick_intents: [thanks]
    on: {goodbye: bye}
  bye: {say: "Bye.", action: hangup}
"""


async def test_a_goodbye_template_ends_the_call(
    make_service: Callable[..., Service], running: Any, tmp_path: Path
) -> None:
    path = write(tmp_path / "talk.yaml", TALK_FLOW)
    service = make_service(FakeLLM(), VOICE_AGENT_FLOW_PATH=str(path))
    async with running(service) as url, call(url) as client:
        await client.start()
        bye = await talk(client, "goodbye, have a nice day")
        assert (bye["source"], bye["detail"]["quick"]["intent"]) == ("quick", "goodbye")
        assert (await client.recv())["action"] == "hangup"
        assert (await client.recv()) == {"type": "call.ended", "reason": "agent_hangup"}


async def test_a_state_limits_which_small_talk_templates_answer(
    make_service: Callable[..., Service], running: Any, tmp_path: Path
) -> None:
    path = write(tmp_path / "picky.yaml", PICKY_FLOW)
    service = make_service(FakeLLM(), VOICE_AGENT_FLOW_PATH=str(path))
    async with running(service) as url, call(url) as client:
        await client.start()
        assert (await talk(client, "thanks"))["source"] == "quick"
        hello = await talk(client, "hello")
        assert hello["source"] == "llm"
        assert hello["detail"]["passed"] == ["quick"]


async def test_with_optimizations_disabled_small_talk_goes_to_the_llm(
    make_service: Callable[..., Service], running: Any
) -> None:
    llm = FakeLLM()
    service = make_service(llm, LATENCY_OPTIMIZATION_MODE="disabled")
    async with running(service) as url, call(url) as client:
        await client.start()
        assert (await talk(client, "hello"))["source"] == "llm"
        assert len(llm.calls) == 1


async def test_explain_shows_every_tier_over_http_and_from_the_command(
    make_service: Callable[..., Service], running: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    service = make_service(VOICE_AGENT_DEFAULT_FLOW="pharmacy")
    async with running(service) as url:
        async with httpx.AsyncClient(base_url=url) as http:
            result = (
                await http.post(
                    "/v1/explain", json={"text": "thanks, what's the fee?", "state": "answer"}
                )
            ).json()
            assert result["flow"]["state"] == "answer" and result["flow"]["answers_with_tiers"]
            assert result["quick"]["answer"] is False
            assert result["served_by"] == "knowledge"
            assert result["knowledge"]["passages"]
            refill = (await http.post("/v1/explain", json={"text": "I need a refill"})).json()
            assert refill["flow"]["intent"]["name"] == "refill"
            assert refill["flow"]["next_state"] == "ask_rx" and refill["served_by"] == "flow"
            bad = await http.post("/v1/explain", json={"text": "hi", "state": "nowhere"})
            assert bad.status_code == 422
        import asyncio

        code = await asyncio.to_thread(
            main, ["explain", "hello", "--state", "answer", "--url", url]
        )
    assert code == 0
    out = capsys.readouterr().out
    assert '"served_by": "quick"' in out and '"intent": "greeting"' in out
