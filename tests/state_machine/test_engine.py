"""The engine on the issue's example flow (bundled as the demo flow), event by event."""

from __future__ import annotations

from pathlib import Path

import pytest

from state_machine import (
    Answered,
    CallState,
    Dtmf,
    Flow,
    Silence,
    TransitionError,
    Utterance,
    candidate_intents,
    load_flow,
    start,
    step,
)
from state_machine.slots import spoken_digits

DEMO_FLOW = Path(__file__).parents[2] / "voice_agent" / "data" / "flows" / "pharmacy.yaml"
CONTEXT = {"business": "Maple Street Pharmacy"}


@pytest.fixture(scope="module")
def flow() -> Flow:
    return load_flow(DEMO_FLOW)


def run(flow: Flow, *events: object) -> tuple[CallState, list[object]]:
    call, decision = start(flow, CONTEXT)
    decisions: list[object] = [decision]
    for event in events:
        call, decision = step(flow, call, event, CONTEXT)  # type: ignore[arg-type]
        decisions.append(decision)
    return call, decisions


def test_the_call_starts_with_the_greeting_filled_from_context(flow: Flow) -> None:
    call, decision = start(flow, CONTEXT)
    assert call.state == "greet"
    assert decision.say == "Thanks for calling Maple Street Pharmacy. How can I help?"
    assert decision.silence_timeout_s == 10.0
    assert candidate_intents(flow, call) == {"refill": "ask_rx", "human_agent": "transfer"}


def test_a_refill_by_speech_collects_confirms_and_hangs_up(flow: Flow) -> None:
    call, decisions = run(
        flow,
        Utterance("I need a refill", "refill"),
        Utterance("it's one two three four five six"),
        Utterance("yes", "affirm"),
        Utterance("no thanks", "deny"),
    )
    says = [d.say for d in decisions]  # type: ignore[attr-defined]
    assert says[1] == "Please say or key in your prescription number."
    assert says[2] == "I have 123456. Is that right?"
    assert says[3] == "Your refill is on its way. Anything else?"
    assert says[4] == "Goodbye!"
    assert call.slots == {"rx_number": "123456"}
    assert call.ended and decisions[-1].actions[0].name == "hangup"  # type: ignore[attr-defined]


def test_a_refill_keyed_in_completes_on_hash(flow: Flow) -> None:
    call, _ = run(flow, Utterance("refill please", "refill"))
    for digit in "1234567":
        call, decision = step(flow, call, Dtmf(digit), CONTEXT)
        assert decision.say is None and call.state == "ask_rx"
    call, decision = step(flow, call, Dtmf("#"), CONTEXT)
    assert call.state == "confirm" and decision.say == "I have 1234567. Is that right?"


def test_keyed_digits_complete_by_themselves_at_max_len(flow: Flow) -> None:
    call, _ = run(flow, Utterance("refill", "refill"))
    for digit in "12345678":
        call, _ = step(flow, call, Dtmf(digit), CONTEXT)
    assert call.state == "confirm" and call.slots["rx_number"] == "12345678"


def test_a_wrong_number_is_reprompted_then_transferred(flow: Flow) -> None:
    call, decisions = run(
        flow,
        Utterance("refill", "refill"),
        Utterance("it's 123"),
        Utterance("umm I don't know"),
        Utterance("four five"),
    )
    reprompt = "I didn't catch that. Your prescription number, please?"
    assert [d.say for d in decisions[2:4]] == [reprompt, reprompt]  # type: ignore[attr-defined]
    last = decisions[-1]
    assert last.say == "Let me connect you to a pharmacist."  # type: ignore[attr-defined]
    assert last.actions[0].name == "transfer"  # type: ignore[attr-defined]
    assert last.actions[0].value == "+15550100"  # type: ignore[attr-defined]
    assert call.ended


def test_anything_else_in_greet_is_answered_in_the_answer_state_with_its_budgets(
    flow: Flow,
) -> None:
    call, decisions = run(flow, Utterance("do you deliver?"))
    decision = decisions[-1]
    assert call.state == "answer"
    assert decision.respond and decision.say is None  # type: ignore[attr-defined]
    assert decision.task.startswith("Answer questions")  # type: ignore[attr-defined]
    assert decision.budgets.llm_timeout_s == 2.5  # type: ignore[attr-defined]
    assert decision.budgets.first_token_budget_s == 0.8  # type: ignore[attr-defined]
    assert decision.cacheable  # type: ignore[attr-defined]
    call, decision = step(flow, call, Answered(), CONTEXT)
    assert call.state == "answer" and decision.say is None
    call, decision = step(flow, call, Utterance("and are you open sunday?"), CONTEXT)
    assert decision.respond
    call, decision = step(flow, call, Utterance("bye", "goodbye"), CONTEXT)
    assert decision.say == "Goodbye!" and call.ended


def test_slot_collection_is_not_cacheable_and_uses_no_tiers(flow: Flow) -> None:
    _, decisions = run(flow, Utterance("refill", "refill"))
    decision = decisions[-1]
    assert not decision.cacheable  # type: ignore[attr-defined]
    assert decision.tiers == ()  # type: ignore[attr-defined]
    assert decision.silence_timeout_s == 8  # type: ignore[attr-defined]


def test_silence_reminds_then_gives_up(flow: Flow) -> None:
    call, _ = run(flow, Utterance("refill", "refill"))
    for _ in range(2):
        call, decision = step(flow, call, Silence(), CONTEXT)
        assert decision.say == "I didn't catch that. Your prescription number, please?"
    call, decision = step(flow, call, Silence(), CONTEXT)
    assert call.state == "transfer" and call.ended


def test_silence_without_on_fail_hangs_up_politely(flow: Flow) -> None:
    call, _ = start(flow, CONTEXT)
    for _ in range(2):
        call, decision = step(flow, call, Silence(), CONTEXT)
        assert decision.say == "Are you still there?"
    call, decision = step(flow, call, Silence(), CONTEXT)
    assert call.ended and decision.actions[0].name == "hangup"


def test_an_invalid_event_names_the_state_and_the_event(flow: Flow) -> None:
    call, _ = start(flow, CONTEXT)
    with pytest.raises(TransitionError, match=r"state 'greet' cannot take Answered"):
        step(flow, call, Answered(), CONTEXT)
    ended, _ = run(flow, Utterance("x", "human_agent"))
    with pytest.raises(TransitionError, match=r"state 'transfer' cannot take Utterance.*ended"):
        step(flow, ended, Utterance("hello"), CONTEXT)


def test_a_confirmation_that_is_neither_yes_nor_no_repeats_the_question(flow: Flow) -> None:
    call, decisions = run(
        flow, Utterance("refill", "refill"), Utterance("123456"), Utterance("what?")
    )
    assert call.state == "confirm"
    assert decisions[-1].say == "I have 123456. Is that right?"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("text", "digits"),
    [
        ("one two three four five six", "123456"),
        ("it's 12 34 56", "123456"),
        ("double seven oh one two three", "770123"),
        ("I have 2 refills, the number is 4 5 6 7 8 9", "456789"),
        ("nine eight seven six five four three", "9876543"),
        ("no digits here", ""),
    ],
)
def test_digits_are_read_from_speech(text: str, digits: str) -> None:
    assert spoken_digits(text) == digits
