"""Flows run by the service over the native protocol: the demo (the issue's example flow),
slot collection by speech and keys, transfer, hang-up, silence reminders, and budgets and
cacheability taken from the state."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from voice_agent.server.service import Service
from voice_agent.tiers.chain import ResponderChain

from ..conftest import CallClient, call
from ..fakes import FakeLLM, ScriptedTier, scaled

pytestmark = pytest.mark.model  # intents are matched with the real encoder

GREETING = "Thanks for calling Maple Street Pharmacy. How can I help?"
ASK_RX = "Please say or key in your prescription number."
REPROMPT = "I didn't catch that. Your prescription number, please?"


async def turn(client: CallClient, text: str) -> dict[str, Any]:
    return (await client.ask(text))[-1]


async def greeted(client: CallClient) -> None:
    ready = await client.start()
    assert ready["state"] == "greet"
    done = (await client.until("agent.done"))[-1]
    assert (done["text"], done["source"], done["turn_id"]) == (GREETING, "flow", 1)


@pytest.fixture
def demo(make_service: Callable[..., Service]) -> Service:
    return make_service(FakeLLM(), VOICE_AGENT_DEFAULT_FLOW="pharmacy")


async def test_a_refill_by_speech_is_confirmed_and_goodbye_hangs_up(
    demo: Service, running: Any
) -> None:
    async with running(demo) as url, call(url) as client:
        await greeted(client)
        ask = await turn(client, "Hi, I need a refill")
        assert (ask["text"], ask["state"], ask["source"]) == (ASK_RX, "ask_rx", "flow")
        assert ask["detail"]["flow"]["intent"]["name"] == "refill"
        confirm = await turn(client, "sure, it's one two three four five six")
        assert (confirm["text"], confirm["state"]) == ("I have 123456. Is that right?", "confirm")
        done = await turn(client, "yes that's right")
        assert (done["text"], done["state"]) == (
            "Your refill is on its way. Anything else?",
            "done",
        )
        bye = await turn(client, "no thanks")
        assert (bye["text"], bye["state"]) == ("Goodbye!", "bye")
        assert await client.recv() == {
            "type": "agent.action",
            "turn_id": bye["turn_id"],
            "action": "hangup",
        }
        assert await client.recv() == {"type": "call.ended", "reason": "agent_hangup"}


async def test_a_refill_keyed_in_on_the_keypad(demo: Service, running: Any) -> None:
    async with running(demo) as url, call(url) as client:
        await greeted(client)
        await turn(client, "I'd like to refill my prescription")
        for digit in "7654321":
            await client.send({"type": "user.dtmf", "digit": digit})
        await client.send({"type": "user.dtmf", "digit": "#"})
        confirm = (await client.until("agent.done"))[-1]
        assert (confirm["text"], confirm["state"]) == ("I have 7654321. Is that right?", "confirm")


async def test_a_wrong_number_is_reprompted_then_transferred(demo: Service, running: Any) -> None:
    async with running(demo) as url, call(url) as client:
        await greeted(client)
        await turn(client, "refill please")
        assert (await turn(client, "it's 123"))["text"] == REPROMPT
        assert (await turn(client, "I'm not sure"))["text"] == REPROMPT
        transfer = await turn(client, "four five")
        assert (transfer["text"], transfer["state"]) == (
            "Let me connect you to a pharmacist.",
            "transfer",
        )
        assert await client.recv() == {
            "type": "agent.action",
            "turn_id": transfer["turn_id"],
            "action": "transfer",
            "to": "+15550100",
        }
        assert await client.recv() == {"type": "call.ended", "reason": "transfer"}


async def test_questions_are_answered_in_the_answer_state_then_goodbye_hangs_up(
    demo: Service, running: Any
) -> None:
    async with running(demo) as url, call(url) as client:
        await greeted(client)
        answer = await turn(client, "Do you deliver?")
        assert (answer["source"], answer["state"]) == ("llm", "answer")
        assert answer["text"] == "Maple Street Pharmacy opens at 9 AM."
        bye = await turn(client, "ok, goodbye")
        assert bye["text"] == "Goodbye!"
        assert (await client.recv())["action"] == "hangup"


async def test_asking_for_a_person_transfers(demo: Service, running: Any) -> None:
    async with running(demo) as url, call(url) as client:
        await greeted(client)
        transfer = await turn(client, "can I talk to a person please")
        assert transfer["state"] == "transfer"
        assert (await client.recv())["to"] == "+15550100"


def write_flow(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


async def test_silence_brings_a_reminder_from_the_server_then_a_polite_hangup(
    make_service: Callable[..., Service], running: Any, tmp_path: Path
) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    write_flow(
        flows / "quiet.yaml",
        f"""
name: quiet
start: hello
defaults: {{silence_timeout_s: {scaled(0.2)}, max_reprompts: 1}}
states:
  hello:
    say: "Hello?"
    on: {{goodbye: bye}}
    otherwise: bye
  bye: {{say: "Bye.", action: hangup}}
""",
    )
    service = make_service(VOICE_AGENT_FLOW_PATH=str(flows), VOICE_AGENT_DEFAULT_FLOW="quiet")
    async with running(service) as url, call(url) as client:
        await client.start()
        assert (await client.until("agent.done"))[-1]["text"] == "Hello?"
        reminder = (await client.until("agent.done"))[-1]
        assert (reminder["text"], reminder["source"]) == ("Are you still there?", "flow")
        assert reminder["detail"]["flow"]["reason"] == "silence reminder"
        goodbye = (await client.until("agent.done"))[-1]
        assert goodbye["detail"]["flow"]["reason"] == "silent; hung up"
        assert (await client.recv())["action"] == "hangup"
        assert (await client.recv())["type"] == "call.ended"


async def test_the_flow_is_chosen_by_name_and_an_unknown_one_is_refused(
    make_service: Callable[..., Service], running: Any
) -> None:
    service = make_service()  # default flow: qa
    async with running(service) as url, call(url) as client:
        await client.send({"type": "call.start", "flow": "nope"})
        error = await client.recv()
        assert error["code"] == "unknown_flow" and "pharmacy" in error["message"]
        ready = await client.start(flow="pharmacy")
        assert ready["state"] == "greet"


BUDGET_FLOW = """
name: budgets
start: patient
defaults: {first_token_budget_s: %(first)s, llm_timeout_s: 5}
intents:
  hurry: ["hurry up", "be quick"]
states:
  patient:
    task: "Answer at your own pace."
    llm_timeout_s: %(patient)s
    on: {hurry: hasty, goodbye: bye}
  hasty:
    task: "Answer fast."
    llm_timeout_s: %(hasty)s
    cacheable: false
    on: {goodbye: bye}
  bye: {say: "Bye.", action: hangup}
"""


async def test_the_states_budgets_decide_between_answer_and_fallback_with_one_llm(
    make_service: Callable[..., Service], running: Any, tmp_path: Path
) -> None:
    path = write_flow(
        tmp_path / "budgets.yaml",
        BUDGET_FLOW % {"first": scaled(0.05), "patient": scaled(2.0), "hasty": scaled(0.2)},
    )
    llm = FakeLLM(first_token_s=scaled(0.4))  # the same LLM in both states
    service = make_service(llm, VOICE_AGENT_FLOW_PATH=str(path))
    async with running(service) as url, call(url) as client:
        await client.start()
        patient = await turn(client, "When do you open?")
        assert (patient["state"], patient["source"]) == ("patient", "llm")
        assert patient["text"].endswith("Maple Street Pharmacy opens at 9 AM.")
        await turn(client, "hurry up")
        hasty = await turn(client, "When do you open?")
        assert (hasty["state"], hasty["source"]) == ("hasty", "fallback")
        assert hasty["detail"]["reason"] == "timeout_first_token"


async def test_cacheability_and_task_reach_the_tiers_from_the_state(
    make_service: Callable[..., Service], running: Any, tmp_path: Path
) -> None:
    path = write_flow(
        tmp_path / "budgets.yaml", BUDGET_FLOW % {"first": 0.5, "patient": 2.0, "hasty": 1.0}
    )
    service = make_service(VOICE_AGENT_FLOW_PATH=str(path))
    tier = ScriptedTier(text="Sure.")
    service = replace(service, responder=ResponderChain([tier], fallback_text="sorry"))
    async with running(service) as url, call(url) as client:
        await client.start()
        await turn(client, "question one")
        await turn(client, "be quick")
        await turn(client, "question two")
    # "be quick" moves to the hasty state and, as it has a task, is answered there too.
    assert [r.text for r in tier.requests] == ["question one", "be quick", "question two"]
    first, second = tier.requests[0], tier.requests[-1]
    assert (first.state, first.cacheable, first.task) == (
        "patient",
        True,
        "Answer at your own pace.",
    )
    assert (second.state, second.cacheable, second.task) == ("hasty", False, "Answer fast.")
    assert first.budgets is not None and first.budgets.total_s == 2.0
    assert second.budgets is not None and second.budgets.total_s == 1.0
