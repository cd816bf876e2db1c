"""Scenarios run and judged, reported for people (each failing turn with what was expected, what
came, and the service's explanation of its decision) and for CI (JUnit XML, one test case per
scenario)."""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from voice_agent.scenarios.checks import judge
from voice_agent.scenarios.model import Scenario
from voice_agent.scenarios.paraphrase import LineRate
from voice_agent.scenarios.runner import (
    Played,
    Turn,
    add_quality,
    check_against_knowledge,
    play,
)


@dataclass(slots=True)
class TurnVerdict:
    turn: Turn
    failures: list[str]
    explained: dict[str, Any] | None = None  # the service's /v1/explain, for a failing turn


@dataclass(slots=True)
class Verdict:
    file: Path
    scenario: Scenario
    played: Played
    turns: list[TurnVerdict] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def failures(self) -> list[str]:
        found = [f"call: {self.played.failure}"] if self.played.failure else []
        for number, verdict in enumerate(self.turns):
            found += [f"turn {number} ({verdict.turn.label}): {f}" for f in verdict.failures]
        return found

    @property
    def passed(self) -> bool:
        return not self.failures


async def run_scenario(url: str, file: Path, scenario: Scenario, key: str | None) -> Verdict:
    """Play, score, judge, and explain what failed."""
    began = time.perf_counter()
    played = await play(url, scenario, key)
    if any(s.expect.min_quality is not None for s in scenario.steps):
        await add_quality(url, played, key)
    steps = scenario.steps[: len(played.turns)]
    checked = {i for i, s in enumerate(steps) if s.expect.no_contradiction}
    if checked:
        await check_against_knowledge(url, played, scenario.flow, key, checked)
    verdict = Verdict(file, scenario, played)
    if played.greeting is not None and scenario.greeting is not None:
        verdict.turns.append(
            TurnVerdict(played.greeting, judge(scenario.greeting, played.greeting))
        )
    for step, turn in zip(scenario.steps, played.turns, strict=False):
        verdict.turns.append(TurnVerdict(turn, judge(step.expect, turn)))
    missing = len(scenario.steps) - len(played.turns)
    if missing > 0 and played.failure is None:
        played.failure = f"the call ended before the last {missing} step(s)"
    await explain_failures(url, verdict, key)
    verdict.seconds = time.perf_counter() - began
    return verdict


async def explain_failures(url: str, verdict: Verdict, key: str | None) -> None:
    """What every tier would decide for each failing turn's words, in the state they were
    heard in (the service's POST /v1/explain)."""
    failing = [v for v in verdict.turns if v.failures and v.turn.words is not None]
    if not failing:
        return
    headers = {"X-API-Key": key} if key else {}
    http_url = url.replace("ws", "http", 1)
    async with httpx.AsyncClient(base_url=http_url, headers=headers, timeout=30) as http:
        for turn_verdict in failing:
            body = {"text": turn_verdict.turn.words, "flow": verdict.scenario.flow,
                    "state": turn_verdict.turn.state_before}  # fmt: skip
            response = await http.post("/v1/explain", json=body)
            if response.status_code == 200:
                turn_verdict.explained = response.json()


def text_report(verdicts: list[Verdict]) -> str:
    lines = []
    for v in verdicts:
        mark = "PASS" if v.passed else "FAIL"
        lines.append(f"{mark} {v.file}: {v.scenario.name} ({v.seconds:.1f} s)")
        if v.played.failure:
            lines.append(f"    call: {v.played.failure}")
        for number, turn_verdict in enumerate(v.turns):
            if not turn_verdict.failures:
                continue
            turn = turn_verdict.turn
            lines.append(
                f"    turn {number}, {turn.label} in state {turn.state_before}: "
                f"{turn.source} said {turn.text!r} (state {turn.state})"
            )
            lines += [f"      - {failure}" for failure in turn_verdict.failures]
            if turn_verdict.explained is not None:
                lines += [
                    "      explain:",
                    *(f"        {x}" for x in explain_lines(turn_verdict.explained)),
                ]
    passed = sum(v.passed for v in verdicts)
    lines.append(f"\n{passed} of {len(verdicts)} scenarios passed")
    return "\n".join(lines) + "\n"


def explain_lines(explained: dict[str, Any]) -> list[str]:
    """The service's explanation, a line per tier: what it decided and its best evidence
    (`voice-agent explain` shows all of it)."""
    flow = explained.get("flow") or {}
    intent = flow.get("intent")
    if isinstance(intent, dict):
        intent = f"{intent.get('name')} ({intent.get('kind')}, score {intent.get('score')})"
    lines = [
        f"served by {explained.get('served_by')}; flow: {flow.get('state')} -> "
        f"{flow.get('next_state')} ({flow.get('reason')}), intent {intent}"
    ]
    quick = explained.get("quick") or {}
    if quick:
        lines.append(
            f"templates: {'answer' if quick.get('answer') else 'pass'}, intent "
            f"{quick.get('intent')} ({quick.get('kind')}, score {quick.get('score')}, "
            f"predicted {quick.get('predicted')})"
            + (f", guard {quick['guard']}" if quick.get("guard") else "")
        )
    cache = explained.get("cache") or {}
    if cache.get("neighbours"):
        top = cache["neighbours"][0]
        lines.append(
            f"cache: {'hit' if cache.get('hit') else 'miss'} ({cache.get('reason', '')}); nearest "
            f"{top.get('question')!r} at {top.get('similarity')}"
            + (f", refused by {top['refused_by']}" if top.get("refused_by") else "")
        )
    passages = (explained.get("knowledge") or {}).get("passages") or []
    if passages:
        found = ", ".join(f"{p.get('doc_id')} {p.get('score')}" for p in passages[:3])
        lines.append(f"knowledge: {found}")
    return lines


def junit_xml(verdicts: list[Verdict], suite: str = "voice-agent scenarios") -> str:
    failed = sum(not v.passed for v in verdicts)
    root = ET.Element("testsuites", name=suite, tests=str(len(verdicts)), failures=str(failed))
    took = f"{sum(v.seconds for v in verdicts):.3f}"
    group = ET.SubElement(
        root, "testsuite", name=suite, tests=str(len(verdicts)), failures=str(failed), time=took
    )
    for v in verdicts:
        case = ET.SubElement(
            group, "testcase", classname=str(v.file), name=v.scenario.name, time=f"{v.seconds:.3f}"
        )
        if not v.passed:
            failure = ET.SubElement(case, "failure", message=v.failures[0][:200])
            failure.text = "\n".join(v.failures)
    return ET.tostring(root, encoding="unicode", xml_declaration=True)


def steps_passed(verdict: Verdict) -> list[bool]:
    """Per step of the scenario, whether its turn did what was expected (a step the call never
    reached did not)."""
    turns = [v for v in verdict.turns if v.turn.label != "greeting"]
    passed = [not v.failures for v in turns]
    return passed + [False] * (len(verdict.scenario.steps) - len(passed))


def paraphrase_report(rates: list[LineRate]) -> str:
    """Per caller line: how many of its rewordings were heard as meant (of those reached)."""
    lines = ["\nRewordings (the configured LLM's), per caller line: passed / reached"]
    for rate in rates:
        if not rate.reached:
            continue
        lines.append(f"  {rate.passed}/{rate.reached}  {rate.scenario}: {rate.line!r}")
        lines += [f"        failed as {wording!r}" for wording in rate.failed_wordings]
    reached = sum(r.reached for r in rates)
    passed = sum(r.passed for r in rates)
    share = f"{100 * passed / reached:.0f}%" if reached else "-"
    lines.append(f"{passed} of {reached} reworded lines passed ({share})")
    return "\n".join(lines) + "\n"
