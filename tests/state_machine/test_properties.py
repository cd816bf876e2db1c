"""Property-based: no sequence of events crashes the engine or strands a call."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from state_machine import (
    Answered,
    CallState,
    Dtmf,
    Flow,
    Silence,
    Utterance,
    candidate_intents,
    check_flow,
    load_flow,
    parse_flow,
    start,
    step,
)
from state_machine.checks import edges

from .test_engine import CONTEXT, DEMO_FLOW

DEMO = load_flow(DEMO_FLOW)
INTENTS = ["refill", "human_agent", "goodbye", "affirm", "deny", "greeting", None]
TEXTS = ["", "yes", "123456", "one two three four five six", "1234", "what?", "x" * 300]


@st.composite
def events(draw: st.DrawFn, flow: Flow, call: CallState) -> Any:
    """An event the service could send in `call`'s state: intents it would look for there
    (or any of the known ones, to be rough), keys, silence, an answer where one was asked."""
    kind = draw(st.sampled_from(["utterance", "dtmf", "silence", "answered"]))
    if kind == "utterance":
        intent = draw(st.sampled_from([*candidate_intents(flow, call), *INTENTS]))
        return Utterance(draw(st.sampled_from(TEXTS) | st.text(max_size=40)), intent)
    if kind == "dtmf":
        return Dtmf(draw(st.sampled_from(list("0123456789*#"))))
    if kind == "answered" and flow.states[call.state].task is not None:
        return Answered()
    return Silence()


def can_still_end(flow: Flow, state: str) -> bool:
    seen, todo = {state}, [state]
    while todo:
        current = flow.states[todo.pop()]
        if current.ends_call:
            return True
        for _, target in edges(flow, current):
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return False


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_no_event_sequence_crashes_the_demo_flow_or_strands_the_call(data: st.DataObject) -> None:
    call, decision = start(DEMO, CONTEXT)
    for _ in range(data.draw(st.integers(0, 40))):
        if call.ended:
            break
        event = data.draw(events(DEMO, call))
        call, decision = step(DEMO, call, event, CONTEXT)
        assert call.state in DEMO.states
        assert decision.state == call.state
        assert decision.ended == call.ended
        assert set(call.slots) <= DEMO.slots()
        if not call.ended:
            assert decision.silence_timeout_s is not None and decision.silence_timeout_s > 0
            assert can_still_end(DEMO, call.state)
        if decision.say is not None:
            assert "{" not in decision.say


NAMES = st.sampled_from(["a", "b", "c", "d", "z"])


@st.composite
def small_flows(draw: st.DrawFn) -> dict[str, Any]:
    states: dict[str, Any] = {}
    for name in draw(st.lists(NAMES, min_size=1, max_size=5, unique=True)):
        state: dict[str, Any] = {"say": f"in {name}"}
        choice = draw(st.sampled_from(["on", "task", "collect", "end", "pass"]))
        if choice == "on":
            state["on"] = draw(
                st.dictionaries(st.sampled_from(["yes", "no", "bye"]), NAMES, max_size=3)
            )
            if draw(st.booleans()):
                state["otherwise"] = draw(NAMES)
        elif choice == "task":
            state["task"] = "answer"
            state["on"] = {"bye": draw(NAMES)}
        elif choice == "collect":
            state["collect"] = {"slot": "num", "min_len": 2, "max_len": 4}
            state["next"] = draw(NAMES)
            state["on_fail"] = draw(NAMES)
        elif choice == "end":
            state["action"] = "hangup"
        else:
            state["next"] = draw(NAMES)
        states[name] = state
    return {"name": "random", "start": draw(st.sampled_from(sorted(states))), "states": states}


@settings(max_examples=300, deadline=None)
@given(small_flows(), st.data())
def test_any_flow_that_passes_the_checks_runs_any_events_safely(
    raw: dict[str, Any], data: st.DataObject
) -> None:
    flow = parse_flow(raw, "random.yaml")
    if check_flow(flow):
        return  # the checks refused it: the property is about the flows they accept
    call, _ = start(flow, CONTEXT)
    for _ in range(30):
        if call.ended:
            break
        call, _ = step(flow, call, data.draw(events(flow, call)), CONTEXT)
        assert call.state in flow.states
        assert call.ended or can_still_end(flow, call.state)


@settings(max_examples=200, deadline=None)
@given(small_flows())
def test_checks_never_crash_and_every_problem_says_where(raw: dict[str, Any]) -> None:
    for problem in check_flow(parse_flow(raw, "random.yaml")):
        assert problem.where.startswith("random.yaml") and problem.message
