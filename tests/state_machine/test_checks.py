"""Load-time checks: each class of bad flow is caught with a message naming where."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from state_machine import FlowError, check_flow, load_flow, mermaid, parse_flow, read_flow

from .test_engine import DEMO_FLOW


def flow_with(**states: Any) -> dict[str, Any]:
    return {"name": "t", "start": "a", "states": states}


BYE = {"say": "Bye.", "action": "hangup"}


def problems(data: dict[str, Any]) -> list[str]:
    return [str(p) for p in check_flow(parse_flow(data, "t.yaml"))]


def test_the_demo_flow_has_no_problems() -> None:
    assert check_flow(read_flow(DEMO_FLOW)) == []


def test_an_unknown_target_is_named_with_state_and_field() -> None:
    found = problems(flow_with(a={"say": "hi", "on": {"yes": "nowhere"}}))
    assert found == ["t.yaml: state a.on.yes: unknown state 'nowhere'"]


def test_an_unknown_start_state() -> None:
    data = flow_with(a=BYE)
    data["start"] = "b"
    assert problems(data) == ["t.yaml: start: unknown state 'b'"]


def test_an_unreachable_state() -> None:
    found = problems(flow_with(a={"say": "hi", "next": "z"}, z=BYE, lost=BYE))
    assert found == ["t.yaml: state lost: unreachable from start 'a'"]


def test_a_state_with_no_way_out() -> None:
    found = problems(
        flow_with(
            a={"say": "hi", "on": {"yes": "stuck"}, "otherwise": "z"},
            stuck={"say": "I am here forever."},
            z=BYE,
        )
    )
    assert "t.yaml: state stuck: no way out: no transition or action" in found


def test_a_loop_that_never_reaches_an_end() -> None:
    found = problems(
        flow_with(
            a={"say": "hi", "otherwise": "b", "on": {"bye": "z"}},
            b={"task": "chat", "on": {"again": "c"}},
            c={"say": "again", "next": "b"},
            z=BYE,
        )
    )
    assert any("state b: no path from here reaches a state that ends the call" in p for p in found)


def test_a_slot_spoken_before_it_is_collected_on_every_path() -> None:
    found = problems(
        flow_with(
            a={"say": "hi", "on": {"skip": "confirm"}, "otherwise": "ask"},
            ask={"say": "Number?", "collect": {"slot": "num"}, "next": "confirm", "on_fail": "z"},
            confirm={"say": "I have {num}.", "on": {"yes": "z", "no": "ask"}},
            z=BYE,
        )
    )
    assert found == [
        "t.yaml: state confirm.say: slot 'num' is used before it is collected on every path "
        "to this state"
    ]


def test_a_slot_spoken_after_collection_is_fine_and_so_is_business() -> None:
    assert (
        problems(
            flow_with(
                a={"say": "Welcome to {business}.", "next": "ask"},
                ask={
                    "say": "Number?",
                    "collect": {"slot": "num"},
                    "next": "confirm",
                    "on_fail": "z",
                },
                confirm={"say": "I have {num}.", "on": {"yes": "z", "no": "ask"}},
                z=BYE,
            )
        )
        == []
    )


def test_an_unknown_placeholder_is_reported() -> None:
    found = problems(flow_with(a={"say": "Hi {caller_name}.", "next": "z"}, z=BYE))
    assert found == [
        "t.yaml: state a.say: {caller_name} is neither a slot nor in the flow's context"
    ]


def test_contradictory_settings_are_reported() -> None:
    found = problems(
        flow_with(
            a={
                "task": "chat",
                "collect": {"slot": "x"},
                "next": "z",
                "first_token_budget_s": 2,
                "llm_timeout_s": 1,
            },
            z={"say": "bye", "action": "hangup", "next": "a"},
        )
    )
    assert "t.yaml: state a: a state either collects a slot or answers a task" in found
    assert "t.yaml: state a: first_token_budget_s must be below llm_timeout_s" in found
    assert "t.yaml: state z: a state whose action ends the call cannot have transitions" in found


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"name": "t", "start": "a"}, "t.yaml.states: expected a mapping"),
        (flow_with(a={"sya": "typo"}), "t.yaml: state a: unknown field(s) sya"),
        (flow_with(a={"say": "x", "action": "explode"}), "t.yaml: state a.action: must be"),
        (
            flow_with(a={"collect": {"slot": "x", "kind": "photo"}}),
            "t.yaml: state a.collect.kind: must be digits, text or choice",
        ),
        (
            flow_with(a={"collect": {"slot": "x", "min_len": 9, "max_len": 3}}),
            "t.yaml: state a.collect: needs 1 <= min_len <= max_len",
        ),
        (
            flow_with(a={"say": "x", "llm_timeout_s": "soon"}),
            "t.yaml: state a.llm_timeout_s: must be a number",
        ),
        (
            flow_with(a={"say": "x", "cacheable": "maybe"}),
            "t.yaml: state a.cacheable: must be true or false",
        ),
        (flow_with(a={"say": "x", "tiers": ["magic"]}), "t.yaml: state a.tiers: must be a list"),
        (
            flow_with(a={"say": "x", "on": {"yes": 5}}),
            "t.yaml: state a.on.yes: '5' is not a state name",
        ),
    ],
)
def test_malformed_fields_are_named(data: dict[str, Any], message: str) -> None:
    with pytest.raises(FlowError) as caught:
        parse_flow(data, "t.yaml")
    assert message in str(caught.value)


def test_load_flow_lists_every_problem_and_reading_errors_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(flow_with(a={"say": "hi", "on": {"x": "b", "y": "c"}})))
    with pytest.raises(FlowError, match=r"2 problem\(s\)") as caught:
        load_flow(bad)
    assert "unknown state 'b'" in str(caught.value) and "unknown state 'c'" in str(caught.value)
    broken = tmp_path / "broken.yaml"
    broken.write_text("states: [unclosed")
    with pytest.raises(FlowError, match=r"broken\.yaml: not valid YAML"):
        read_flow(broken)


def test_the_on_key_is_not_read_as_a_boolean(tmp_path: Path) -> None:
    path = tmp_path / "f.yaml"
    path.write_text(
        "name: f\nstart: a\nstates:\n  a: {say: hi, on: {yes: z, no: z}}\n"
        "  z: {say: bye, action: hangup}\n"
    )
    flow = load_flow(path)
    assert flow.states["a"].on == {"yes": "z", "no": "z"}


def test_the_graph_is_a_mermaid_state_diagram_of_every_transition() -> None:
    graph = mermaid(read_flow(DEMO_FLOW))
    assert graph.startswith("stateDiagram-v2\n    [*] --> greet\n")
    for line in (
        "greet --> ask_rx: refill",
        "ask_rx --> confirm: next",
        "ask_rx --> transfer: on_fail",
        "transfer --> [*]: transfer +15550100",
        "bye --> [*]: hangup",
        "ask_rx: ask_rx (collects rx_number)",
    ):
        assert f"    {line}\n" in graph
