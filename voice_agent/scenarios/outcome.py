"""What a scenario's call came to: each step's turn as the caller's side saw it, and the
verdicts on them. Plain data, shared by the runner, the checks and the report."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from voice_agent.scenarios.model import Scenario


@dataclass(slots=True)
class Turn:
    """What one step (or the greeting) got back."""

    label: str
    state_before: str | None = None  # the state the caller's words were heard in
    words: str | None = None  # the caller's words, for a say step
    text: str = ""
    source: str | None = None
    state: str | None = None
    turn_id: int | None = None
    first_word_ms: float | None = None  # from the step's last frame to the first words, here
    service_first_word_ms: float | None = None  # as the service measured it
    action: dict[str, Any] | None = None
    ended: str | None = None  # the call ended, with this reason
    detail: dict[str, Any] = field(default_factory=dict)
    replied: bool = False
    interrupted: bool = False  # the caller talked over it and the service stopped it
    errors: list[str] = field(default_factory=list)  # error frames the step drew
    problems: list[str] = field(default_factory=list)  # what could not be asked of the service
    quality: dict[str, Any] | None = None  # score and parts, when the service scored it
    # Checked against the knowledge base's passages for the words: contradicted or not, and
    # the service's notes (None: not checked).
    contradicted: bool | None = None
    knowledge_notes: list[str] = field(default_factory=list)
    # The service's POST /v1/explain for the words in the state they were heard in, asked once
    # (by the knowledge check, or for the report when the turn failed).
    explained: dict[str, Any] | None = None


@dataclass(slots=True)
class Played:
    call_id: str
    greeting: Turn | None
    turns: list[Turn]
    failure: str | None = None  # the call could not go on (closed, timed out)


@dataclass(slots=True)
class TurnVerdict:
    number: int  # 0 for the greeting, then the steps from 1
    turn: Turn
    failures: list[str]


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
        for verdict in self.turns:
            name = "greeting" if verdict.number == 0 else f"step {verdict.number}"
            found += [f"{name} ({verdict.turn.label}): {f}" for f in verdict.failures]
        return found

    @property
    def passed(self) -> bool:
        return not self.failures

    def steps_passed(self) -> list[bool]:
        """Per step, whether its turn did what was expected (a step never reached did not)."""
        passed = {v.number: not v.failures for v in self.turns if v.number > 0}
        return [passed.get(n, False) for n in range(1, len(self.scenario.steps) + 1)]
