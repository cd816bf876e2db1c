"""A scenario run from start to verdict: played over the call protocol, the service's evidence
gathered where the steps ask for it, each turn judged, and each failing turn explained."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from voice_agent.scenarios.checks import judge
from voice_agent.scenarios.evidence import add_quality, check_against_knowledge, client, explain
from voice_agent.scenarios.model import Scenario
from voice_agent.scenarios.outcome import TurnVerdict, Verdict
from voice_agent.scenarios.runner import play


async def run_scenario(url: str, file: Path, scenario: Scenario, key: str | None) -> Verdict:
    began = time.perf_counter()
    played = await play(url, scenario, key)
    steps = scenario.steps[: len(played.turns)]
    scored = {i for i, s in enumerate(steps) if s.expect.min_quality is not None}
    if scored:
        await add_quality(url, played, key, scored)
    checked = {i for i, s in enumerate(steps) if s.expect.no_contradiction}
    if checked:
        await check_against_knowledge(url, played, scenario.flow, key, checked)
    verdict = Verdict(file, scenario, played)
    if played.greeting is not None and scenario.greeting is not None:
        failures = judge(scenario.greeting, played.greeting)
        verdict.turns.append(TurnVerdict(0, played.greeting, failures))
    for number, (step, turn) in enumerate(zip(scenario.steps, played.turns, strict=False), 1):
        verdict.turns.append(TurnVerdict(number, turn, judge(step.expect, turn)))
    missing = len(scenario.steps) - len(played.turns)
    if missing > 0 and played.failure is None:
        played.failure = f"the call ended before the last {missing} step(s)"
    await explain_failures(url, verdict, key)
    verdict.seconds = time.perf_counter() - began
    return verdict


async def explain_failures(url: str, verdict: Verdict, key: str | None) -> None:
    """What every tier would decide for each failing turn's words, in the state they were
    heard in (the service's POST /v1/explain), unless the knowledge check asked already; left
    out when the service cannot say."""
    failing = [v.turn for v in verdict.turns if v.failures]
    unasked = [t for t in failing if t.words is not None and t.explained is None]
    if not unasked:
        return
    async with client(url, key) as http:
        for turn in unasked:
            try:
                turn.explained = await explain(
                    http, str(turn.words), verdict.scenario.flow, turn.state_before
                )
            except httpx.HTTPError:
                continue
