"""Verdicts reported for people (each failing turn with what was expected, what came, and the
service's explanation of its decision; per-line rates of the rewordings) and for CI (JUnit XML,
one test case per scenario)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

from voice_agent.scenarios.outcome import Verdict
from voice_agent.scenarios.paraphrase import LineRate


def text_report(verdicts: list[Verdict]) -> str:
    lines = []
    for v in verdicts:
        mark = "PASS" if v.passed else "FAIL"
        lines.append(f"{mark} {v.file}: {v.scenario.name} ({v.seconds:.1f} s)")
        if v.played.failure:
            lines.append(f"    call: {v.played.failure}")
        for turn_verdict in v.turns:
            if not turn_verdict.failures:
                continue
            turn = turn_verdict.turn
            name = "greeting" if turn_verdict.number == 0 else f"step {turn_verdict.number}"
            lines.append(
                f"    {name}, {turn.label} in state {turn.state_before}: "
                f"{turn.source} said {turn.text!r} (state {turn.state})"
            )
            lines += [f"      - {failure}" for failure in turn_verdict.failures]
            if turn.explained is not None:
                lines += [
                    "      explain:",
                    *(f"        {x}" for x in explain_lines(turn.explained)),
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
