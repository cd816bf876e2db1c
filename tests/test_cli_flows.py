from __future__ import annotations

from pathlib import Path

import pytest

from voice_agent.cli import main
from voice_agent.settings import BUNDLED_FLOWS_PATH


def test_flow_check_passes_the_bundled_flows(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["flow", "check", str(BUNDLED_FLOWS_PATH)]) == 0
    out = capsys.readouterr().out
    assert "pharmacy.yaml: ok: flow 'pharmacy', 7 states, start greet" in out
    assert "qa.yaml: ok" in out


def test_flow_check_lists_every_problem_and_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "name: bad\nstart: a\nstates:\n"
        "  a: {say: 'I have {num}.', on: {yes: b}}\n"
        "  b: {say: 'Number?', collect: {slot: num}, next: a}\n"
        "  orphan: {say: hi, action: hangup}\n"
    )
    assert main(["flow", "check", str(bad)]) == 1
    out = capsys.readouterr().out
    assert "state orphan: unreachable from start 'a'" in out
    assert "state a.say: slot 'num' is used before it is collected" in out
    assert "no path from here reaches a state that ends the call" in out


def test_flow_graph_prints_mermaid(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["flow", "graph", str(BUNDLED_FLOWS_PATH / "pharmacy.yaml")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("stateDiagram-v2\n")
    assert "    confirm --> done: affirm\n" in out
