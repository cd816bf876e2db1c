"""Paraphrase fan-out: each caller line reworded by the configured LLM, so a suite also tries
the wordings a team did not think of, and per-line pass rates show which line a template or the
cache gets wrong in other words. Rewordings are cached on disk by model and line, so a run
asks the model only for lines it has not seen."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from voice_agent.scenarios.model import Scenario
from voice_agent.types import LLMClient, Message

PROMPT = (
    "You reword what callers say on the phone. Do not answer them. Give {n} other ways to say "
    "exactly the same thing, one per line, nothing else."
)
# One worked example: a small model copies the shape of an answer better than it follows
# instructions (without it, the bundled 135M model answered the caller instead).
EXAMPLE = (
    "Where are you located?",
    ["What's your address?", "Where is the store?", "How do I find you?",
     "Where can I find the pharmacy?", "What street are you on?"],
)  # fmt: skip
MAX_TOKENS = 160
PARAPHRASE_TIMEOUT_S = 60.0  # one line's rewordings, at most
LIST_MARK = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s*")


def reworded(text: str, original: str) -> list[str]:
    """The model's lines as rewordings: list marks and quotes stripped, the original and
    repeats left out, in the order given."""
    found: list[str] = []
    seen = {original.lower().rstrip(".?!")}
    for line in text.splitlines():
        line = LIST_MARK.sub("", line).strip().strip('"').strip()
        key = line.lower().rstrip(".?!")
        if line and key not in seen:
            seen.add(key)
            found.append(line)
    return found


class ParaphraseCache:
    """Rewordings on disk, one JSON file per model: {line: [rewordings]}."""

    def __init__(self, folder: Path, model: str) -> None:
        self.path = folder / f"paraphrases-{hashlib.sha256(model.encode()).hexdigest()[:12]}.json"
        self.lines: dict[str, list[str]] = (
            json.loads(self.path.read_text(encoding="utf-8")) if self.path.exists() else {}
        )

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(self.lines, indent=1, sort_keys=True), encoding="utf-8")


async def paraphrases(llm: LLMClient, line: str, n: int, cache: ParaphraseCache) -> list[str]:
    """Up to `n` rewordings of `line` (fewer when the model gives fewer distinct ones, or none
    in PARAPHRASE_TIMEOUT_S)."""
    known = cache.lines.get(line, [])
    if len(known) >= n:
        return known[:n]
    messages = [
        Message("system", PROMPT.format(n=n)),
        Message("user", EXAMPLE[0]),
        Message("assistant", "\n".join(EXAMPLE[1][:n])),
        Message("user", line),
    ]
    pieces: list[str] = []
    try:
        async with asyncio.timeout(PARAPHRASE_TIMEOUT_S):
            async for piece in llm.stream(messages, MAX_TOKENS):
                pieces.append(piece)
    except TimeoutError:
        pass  # what came in time is used
    text = "".join(pieces)
    found = [*known, *(p for p in reworded(text, line) if p not in known)]
    cache.lines[line] = found
    return found[:n]


@dataclass(slots=True)
class LineRate:
    """One caller line's rewordings: how many were heard as the line was meant."""

    scenario: str
    line: str
    passed: int = 0
    reached: int = 0  # runs in which every step before this one passed
    failed_wordings: list[str] = field(default_factory=list)


def variants(scenario: Scenario, reworded_lines: dict[str, list[str]], n: int) -> list[Scenario]:
    """The scenario n times, the k-th time with every caller line in its k-th rewording (a line
    with fewer rewordings keeps its own words)."""
    made = []
    for k in range(n):
        if not any(k < len(reworded_lines.get(s.say or "", [])) for s in scenario.steps):
            break  # no line has a k-th rewording: the run would repeat the original
        steps = []
        for step in scenario.steps:
            options = reworded_lines.get(step.say or "", []) if step.say is not None else []
            steps.append(step.model_copy(update={"say": options[k]}) if k < len(options) else step)
        made.append(
            scenario.model_copy(
                update={"steps": steps, "name": f"{scenario.name} (rewording {k + 1})"}
            )
        )
    return made


def rate_lines(scenario: Scenario, runs: Sequence[tuple[Scenario, list[bool]]]) -> list[LineRate]:
    """Per caller line of the scenario (a step with words), over the reworded runs: passed /
    reached. A run counts up to its first failing step."""
    rates = {i: LineRate(scenario.name, str(s.say)) for i, s in enumerate(scenario.steps) if s.say}
    for variant, step_passed in runs:
        for index, (original, step, ok) in enumerate(
            zip(scenario.steps, variant.steps, step_passed, strict=False)
        ):
            if index in rates and original.say != step.say:
                rates[index].reached += 1
                rates[index].passed += ok
                if not ok:
                    rates[index].failed_wordings.append(str(step.say))
            if not ok:
                break
    return list(rates.values())
