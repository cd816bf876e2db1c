"""Template packs: small-talk intents with example utterances, response variants and flags,
read from YAML. Thresholds tuned by `bench/quick_responses.py` live beside a pack in
`<pack>.thresholds.yaml` so that tuning never rewrites the hand-written file."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

DEFAULT_PACK = Path(__file__).parent / "packs" / "en.yaml"
DEFAULT_THRESHOLD = 0.8
DEFAULT_MARGIN = 0.05
NO_LAST_TURN = "I haven't said anything yet. How can I help you?"


class PackError(Exception):
    pass


@dataclass(frozen=True, slots=True)
class QuickIntent:
    name: str
    examples: tuple[str, ...]
    responses: tuple[str, ...]
    question: bool = False  # the intent is itself a question ("are you a robot?")
    ends_call: bool = False
    action: str | None = None  # "transfer"
    repeat_last: bool = False  # say the agent's previous turn again
    cacheable: bool = True
    threshold: float = DEFAULT_THRESHOLD


@dataclass(frozen=True, slots=True)
class Pack:
    name: str
    intents: dict[str, QuickIntent]
    margin: float = DEFAULT_MARGIN
    max_unknown_words: int = 0  # words no example uses that an utterance may still carry
    # state name -> intent -> responses used in that state instead of the intent's own
    overrides: dict[str, dict[str, tuple[str, ...]]] = field(default_factory=dict)

    def responses(self, intent: str, state: str | None) -> tuple[str, ...]:
        if state is not None and intent in self.overrides.get(state, {}):
            return self.overrides[state][intent]
        return self.intents[intent].responses


def _texts(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise PackError(f"{where}: must be a list of non-empty text")
    return tuple(v.strip() for v in value)


def _flag(raw: Mapping[str, Any], key: str, default: bool, where: str) -> bool:
    value = raw.get(key, default)
    if not isinstance(value, bool):
        raise PackError(f"{where}.{key}: must be true or false")
    return value


def _threshold(value: Any, where: str) -> float:
    if value is None:
        return DEFAULT_THRESHOLD
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 1:
        raise PackError(f"{where}.threshold: must be a number in (0, 1], got {value!r}")
    return float(value)


def parse_pack(data: Any, source: str, thresholds: Mapping[str, Any] | None = None) -> Pack:
    if not isinstance(data, dict) or not isinstance(data.get("intents"), dict):
        raise PackError(f"{source}: needs an 'intents' mapping")
    tuned = dict(thresholds or {})
    margin = float(tuned.pop("margin", DEFAULT_MARGIN))
    tuned.pop("scorer", None)  # which score the thresholds apply to; informative only
    max_unknown = int(tuned.pop("max_unknown_words", data.get("max_unknown_words", 0)))
    intents = {}
    for name, raw in data["intents"].items():
        where = f"{source}: intents.{name}"
        if not isinstance(raw, dict):
            raise PackError(f"{where}: must be a mapping")
        action = raw.get("action")
        if action not in (None, "transfer"):
            raise PackError(f"{where}.action: only transfer is known")
        intents[name] = QuickIntent(
            name=name,
            examples=_texts(raw.get("examples"), f"{where}.examples"),
            responses=_texts(raw.get("responses"), f"{where}.responses"),
            question=_flag(raw, "question", False, where),
            ends_call=_flag(raw, "ends_call", False, where),
            action=action,
            repeat_last=_flag(raw, "repeat_last", False, where),
            cacheable=_flag(raw, "cacheable", True, where),
            threshold=_threshold(tuned.get(name, raw.get("threshold")), where),
        )
    overrides: dict[str, dict[str, tuple[str, ...]]] = {}
    for state, table in (data.get("overrides") or {}).items():
        if not isinstance(table, dict):
            raise PackError(f"{source}: overrides.{state} must map intents to responses")
        for intent, responses in table.items():
            if intent not in intents:
                raise PackError(f"{source}: overrides.{state}.{intent}: unknown intent")
            overrides.setdefault(str(state), {})[intent] = _texts(
                responses, f"{source}: overrides.{state}.{intent}"
            )
    return Pack(str(data.get("name", source)), intents, margin, max_unknown, overrides)


def thresholds_path(path: Path) -> Path:
    return path.with_name(path.stem + ".thresholds.yaml")


def load_pack(path: Path = DEFAULT_PACK) -> Pack:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        tuned_file = thresholds_path(path)
        tuned = (
            yaml.safe_load(tuned_file.read_text(encoding="utf-8")) if tuned_file.exists() else {}
        )
    except OSError as exc:
        raise PackError(f"{path}: cannot read: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise PackError(f"{path}: not valid YAML: {exc}") from exc
    return parse_pack(data, str(path), tuned)


_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")


def render(template: str, context: Mapping[str, str]) -> str:
    """Fill {name} placeholders from `context`; an unknown one is left out."""
    return " ".join(_PLACEHOLDER.sub(lambda m: context.get(m.group(1), ""), template).split())


def pick_variant(responses: Sequence[str], recent: Sequence[str]) -> str:
    """The first variant not among what the agent said recently, so it does not repeat
    itself word for word; the first one when all were used."""
    for response in responses:
        if response not in recent:
            return response
    return responses[0]
