"""Scenario files: read with every problem named by file, line and field; a caller's "yes"
stays words; the demo suite covers every state and action of the demo flow."""

from __future__ import annotations

from pathlib import Path

import pytest

from state_machine.loader import read_flow
from voice_agent.errors import ConfigError
from voice_agent.scenarios.loader import load_scenarios
from voice_agent.settings import BUNDLED_FLOWS_PATH, DATA_PATH

DEMO = DATA_PATH / "scenarios" / "pharmacy"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(text)
    return path


def test_an_unknown_field_is_named_with_its_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, """name: typo
steps:
  - say: "yes"
    expect:
      sayz: "on its way"
""")  # fmt: skip
    with pytest.raises(ConfigError) as caught:
        load_scenarios(path)
    assert str(caught.value) == f"{path}:5: steps[0].expect.sayz: unknown field"


def test_every_problem_of_every_file_is_told_at_once(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("name: a\nsteps:\n  - say: hi\n    dtmf: '1'\n")
    (tmp_path / "b.yaml").write_text("scenarios:\n  - name: b\n    steps: []\n  - steps: [{}]\n")
    with pytest.raises(ConfigError) as caught:
        load_scenarios(tmp_path)
    lines = str(caught.value).splitlines()
    assert any("a.yaml:3: steps[0]:" in line and "exactly one of say" in line for line in lines)
    assert any("b.yaml:3: scenarios[0].steps:" in line for line in lines)
    assert any("b.yaml:4: scenarios[1].name: Field required" in line for line in lines)


def test_yes_and_no_stay_words_and_bad_yaml_names_its_line(tmp_path: Path) -> None:
    [(_, scenario)] = load_scenarios(
        write(tmp_path, "name: n\nsteps:\n  - say: yes\n  - say: no\n")
    )
    assert [s.say for s in scenario.steps] == ["yes", "no"]
    with pytest.raises(ConfigError, match=r"s.yaml:4: not valid YAML \(expected .,. or .\]."):
        load_scenarios(write(tmp_path, "name: n\nsteps:\n  - say: [unclosed\n"))


def test_the_demo_suite_covers_every_state_and_action_of_the_demo_flow() -> None:
    loaded = [s for _, s in load_scenarios(DEMO)]
    flow = read_flow(BUNDLED_FLOWS_PATH / "pharmacy.yaml")
    steps = [step for s in loaded for step in s.steps]
    expects = [step.expect for step in steps] + [s.greeting for s in loaded if s.greeting]
    assert len(loaded) >= 15
    assert {e.state for e in expects if e.state} == set(flow.states)
    assert {e.action for e in expects if e.action} == {"transfer", "hangup"}
    assert any(step.dtmf for step in steps) and any(step.silence for step in steps)
    assert any(step.barge_in_after_words for step in steps) and any(step.partial for step in steps)
    assert {e.tier for e in expects if isinstance(e.tier, str)} >= {"quick", "cache", "llm", "flow"}
