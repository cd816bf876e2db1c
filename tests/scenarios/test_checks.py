"""A turn judged against its expectations: each line that did not hold says what was expected
and what came; JUnit XML that CI can parse."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from voice_agent.scenarios.checks import judge
from voice_agent.scenarios.model import Expect, Scenario, Step
from voice_agent.scenarios.outcome import Played, Turn, TurnVerdict, Verdict
from voice_agent.scenarios.report import junit_xml


def answered(**fields: object) -> Turn:
    turn = Turn("say 'x'", replied=True, text="We are open until 6 PM.", source="cache",
                state="answer", first_word_ms=12.0)  # fmt: skip
    for name, value in fields.items():
        setattr(turn, name, value)
    return turn


def test_a_turn_that_does_what_was_expected_passes() -> None:
    expect = Expect(says=["6 pm", "open"], not_says="closed", matches=r"\d PM",
                    tier=["cache", "quick"], state="answer", first_word_ms=50,
                    no_action=True)  # fmt: skip
    assert judge(expect, answered()) == []


def test_each_failure_says_what_was_expected_and_what_came() -> None:
    expect = Expect(says="8 PM", tier="quick", state="bye", action="hangup", first_word_ms=5)
    failures = judge(expect, answered())
    assert failures == [
        "expected the answer to say '8 PM', got 'We are open until 6 PM.'",
        "expected it answered by quick, got cache",
        "expected state bye, got answer",
        "expected action hangup, got none",
        "expected the first word within 5 ms, got 12 ms",
    ]


def test_actions_silence_barge_in_and_quality() -> None:
    transfer = answered(action={"action": "transfer", "to": "+1555"})
    assert judge(Expect(action="transfer", action_to="+1555"), transfer) == []
    assert judge(Expect(no_action=True), transfer) == [
        "expected the call to go on, got action transfer"
    ]
    assert judge(Expect(no_reply=True), Turn("dtmf 12")) == []
    assert judge(Expect(), Turn("silence", ended="agent_hangup")) == [
        "no reply (the call ended: agent_hangup)"
    ]
    assert judge(Expect(interrupted=True), answered()) == [
        "expected the answer to stop when the caller talked over it, but it ended"
    ]
    assert judge(Expect(not_says="no"), answered(text="I know the hours.")) == []
    assert judge(Expect(says="6"), answered(text="Open until 16:00.")) == [
        "expected the answer to say '6', got 'Open until 16:00.'"
    ]
    scored = answered(quality={"score": 40.0, "parts": {"relevance": 0.2, "speech": 1.0}})
    assert judge(Expect(min_quality=50), scored) == [
        "expected quality at least 50, got 40 (relevance 0.2, speech 1.0)"
    ]
    assert judge(Expect(min_quality=50), answered()) == [
        "expected a quality score, but the service did not score this turn"
    ]
    contradicted = answered(contradicted=True, knowledge_notes=["says 6 PM, the facts say 8 PM"])
    assert judge(Expect(no_contradiction=True), contradicted) == [
        "the answer contradicts the knowledge base: 'We are open until 6 PM.' "
        "(says 6 PM, the facts say 8 PM)"
    ]
    assert judge(Expect(no_contradiction=True), answered(contradicted=False)) == []
    assert judge(Expect(no_contradiction=True), answered()) == [
        "could not check the answer against the knowledge base"
    ]


def test_junit_has_a_case_per_scenario_and_the_failures_of_the_failing_one() -> None:
    def verdict(name: str, failures: list[str]) -> Verdict:
        scenario = Scenario(name=name, steps=[Step(say="hi")])
        turn = answered()
        return Verdict(Path("s.yaml"), scenario, Played("c", None, [turn]),
                       [TurnVerdict(1, turn, failures)], seconds=0.5)  # fmt: skip

    xml = junit_xml([verdict("passes", []), verdict("fails", ["expected state bye, got answer"])])
    root = ET.fromstring(xml.split("?>", 1)[1])
    suite = root.find("testsuite")
    assert suite is not None and suite.get("tests") == "2" and suite.get("failures") == "1"
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    assert cases["passes"].find("failure") is None
    failure = cases["fails"].find("failure")
    assert failure is not None and "step 1 (say 'x'): expected state bye" in (failure.text or "")
