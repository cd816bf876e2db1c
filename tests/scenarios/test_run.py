"""`voice-agent test` for real: the demo suite passes in-process on the model-free extractive
answerer; a deliberately broken copy of the demo flow fails exactly the scenarios that walk the
broken paths, with messages that say so; and `--url` plays scenarios against a real
`voice-agent serve` behind API keys, with JUnit XML that parses."""

from __future__ import annotations

import asyncio
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from voice_agent.cli import main
from voice_agent.settings import BUNDLED_FLOWS_PATH, DATA_PATH

from ..service_process import service_process

pytestmark = pytest.mark.model

DEMO = DATA_PATH / "scenarios" / "pharmacy"
KEY = "scenario-runner-key-0123456789"


def junit_cases(path: Path) -> dict[str, str | None]:
    """Each test case's name and its failure text (None: passed)."""
    root = ET.parse(path).getroot()
    cases = {}
    for case in root.iter("testcase"):
        failure = case.find("failure")
        cases[str(case.get("name"))] = None if failure is None else (failure.text or "")
    return cases


def test_the_demo_suite_passes_in_process(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    junit = tmp_path / "junit.xml"
    code = main(["test", str(DEMO), "--llm", "extractive", "--junit", str(junit)])
    printed = capsys.readouterr().out
    assert code == 0, printed
    cases = junit_cases(junit)
    assert len(cases) >= 15 and all(failure is None for failure in cases.values())
    assert f"{len(cases)} of {len(cases)} scenarios passed" in printed


def test_a_broken_flow_fails_the_scenarios_that_walk_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    flows = tmp_path / "flows"
    shutil.copytree(BUNDLED_FLOWS_PATH, flows)
    pharmacy = flows / "pharmacy.yaml"
    text = pharmacy.read_text()
    # Two mistakes a team could make: asking for a person no longer transfers, and the
    # goodbye state, copied from the transfer state, transfers instead of hanging up.
    broken = text.replace("human_agent: transfer", "human_agent: answer").replace(
        'bye: {say: "Goodbye!", action: hangup}',
        'bye: {say: "Goodbye!", action: {transfer: "+15550100"}}',
    )
    assert broken.count("human_agent: answer") == 1 and "action: hangup" not in broken
    pharmacy.write_text(broken)
    monkeypatch.setenv("VOICE_AGENT_FLOW_PATH", str(flows))
    junit = tmp_path / "junit.xml"
    code = main(["test", str(DEMO), "--llm", "extractive", "--junit", str(junit)])
    printed = capsys.readouterr().out
    failed = {name: text for name, text in junit_cases(junit).items() if text is not None}
    assert code == 1
    assert set(failed) == {
        "transfers a caller who asks for a person",
        "takes a refill by keypad and says goodbye",
        "hangs up after goodbye",
    }, printed
    transfer = failed["transfers a caller who asks for a person"]
    # In `answer` a template meets the request with a transfer of its own, to no number.
    assert "expected state transfer, got answer" in transfer
    assert "expected a transfer to +15550100, got {'action': 'transfer'}" in transfer
    assert "expected action hangup, got transfer" in failed["hangs up after goodbye"]
    # The report explains the failing turn with the service's own decision.
    assert "FAIL" in printed and "explain:" in printed


async def test_scenarios_run_against_a_running_service(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    suite = tmp_path / "suite"
    suite.mkdir()
    for name in ("faq.yaml", "transfer_and_goodbye.yaml"):
        shutil.copy(DEMO / name, suite / name)
    env = {
        "VOICE_AGENT_LLM_BACKEND": "extractive",
        "VOICE_AGENT_DEFAULT_FLOW": "pharmacy",
        "VOICE_AGENT_CACHE_WARM_FAQ": "true",
        "VOICE_AGENT_API_KEYS": f"runner:{KEY}",
        "VOICE_AGENT_REDIS_URL": "",
    }
    junit = tmp_path / "junit.xml"
    async with service_process(tmp_path, "", "http://127.0.0.1:9", **env) as served:
        args = ["test", str(suite), "--url", served.url, "--key", KEY, "--junit", str(junit)]
        code = await asyncio.to_thread(main, args)
        capsys.readouterr()
        refused = await asyncio.to_thread(main, ["test", str(suite), "--url", served.url])
    cases = junit_cases(junit)
    assert code == 0 and len(cases) == 5 and all(f is None for f in cases.values()), cases
    # Without the key every call is refused: reported per scenario, not a crash.
    printed = capsys.readouterr().out
    assert refused == 1 and printed.count("rejected WebSocket connection: HTTP 403") == 5, printed
