"""Intent packs (YAML files of example phrases per intent) and the matcher built from them
with the shared encoder at start-up."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import yaml

from quick_responses.intents import IntentMatcher
from voice_agent.errors import ConfigError
from voice_agent.rag.encoder import Encoder


def load_intent_packs(path: Path) -> dict[str, list[str]]:
    """Every `intents:` mapping in the YAML files under `path` (or in `path` itself)."""
    files = [path] if path.is_file() else sorted(path.glob("*.y*ml"))
    merged: dict[str, list[str]] = {}
    for file in files:
        try:
            data = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"VOICE_AGENT_INTENTS_PATH: {file}: not valid YAML: {exc}") from exc
        intents = data.get("intents") if isinstance(data, dict) else None
        if not isinstance(intents, dict):
            raise ConfigError(f"VOICE_AGENT_INTENTS_PATH: {file}: needs an 'intents' mapping")
        for intent, examples in intents.items():
            if not isinstance(examples, list) or not all(isinstance(e, str) for e in examples):
                raise ConfigError(
                    f"VOICE_AGENT_INTENTS_PATH: {file}: intents.{intent} must be a list of text"
                )
            merged.setdefault(str(intent), []).extend(e.strip() for e in examples if e.strip())
    return merged


def build_matcher(
    packs: Sequence[Mapping[str, Sequence[str]]],
    encoder: Encoder,
    threshold: float,
    margin: float,
) -> IntentMatcher:
    examples: dict[str, list[str]] = {}
    for pack in packs:
        for intent, texts in pack.items():
            examples.setdefault(intent, []).extend(texts)
    return IntentMatcher.build(
        {k: list(dict.fromkeys(v)) for k, v in examples.items()},
        encoder.encode_sync,
        threshold,
        margin,
    )
