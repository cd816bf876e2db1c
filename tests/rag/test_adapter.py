"""The encoder's low-rank adapter: merged at load into the bundled model, it changes the vectors
(and the ONNX export that runs them); training pulls same-label questions together; a file
that does not fit the model is refused with a clear error."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from voice_agent.cache.policy import CachePolicy
from voice_agent.errors import ConfigError
from voice_agent.rag import adapter
from voice_agent.rag.encoder import (
    Encoder,
    bundled_adapter_path,
    load_sentence_model,
)
from voice_agent.rag.onnx_encoder import onnx_forward
from voice_agent.server.build import encoder_model
from voice_agent.settings import load_settings

pytestmark = pytest.mark.model

SENTENCES = ["What time do you open on Saturday?", "Can I pay with a credit card?"]


@pytest.fixture(scope="module")
def bundled() -> Any:
    return load_sentence_model()


def vectors(model: Any, texts: list[str]) -> np.ndarray:
    return Encoder._forward(model, texts)


def test_the_bundled_adapter_moves_the_vectors_a_little(bundled: Any) -> None:
    manifest = bundled_adapter_path().with_suffix(".json")
    assert manifest.is_file() and "recipe" in manifest.read_text()
    adapted = load_sentence_model(adapter=bundled_adapter_path())
    cosines = np.sum(vectors(adapted, SENTENCES) * vectors(bundled, SENTENCES), axis=1)
    # A change, not a new model: the same sentences stay close to where they were.
    assert np.all(cosines < 0.9999) and np.all(cosines > 0.5)
    plain = load_sentence_model()  # without an adapter: the model as it ships
    assert np.abs(vectors(plain, SENTENCES) - vectors(bundled, SENTENCES)).max() < 1e-6


def test_a_zero_adapter_changes_nothing(bundled: Any, tmp_path: Path) -> None:
    weights = adapter.load(bundled_adapter_path())
    zero = {name: np.zeros_like(value) for name, value in weights.items()}
    adapter.save(tmp_path / "zero", zero, {"recipe": "zeros"})
    same = load_sentence_model(adapter=tmp_path / "zero")
    assert np.abs(vectors(same, SENTENCES) - vectors(bundled, SENTENCES)).max() < 1e-6


def test_an_adapter_that_does_not_fit_is_refused(tmp_path: Path) -> None:
    weights = adapter.load(bundled_adapter_path())
    weights.pop(next(iter(weights)))
    adapter.save(tmp_path / "short", weights, {})
    with pytest.raises(ConfigError, match="does not fit"):
        load_sentence_model(adapter=tmp_path / "short")
    with pytest.raises(ConfigError, match="not found"):
        load_sentence_model(adapter=tmp_path / "missing")


def test_the_onnx_export_follows_the_merged_weights(bundled: Any, tmp_path: Path) -> None:
    adapted = load_sentence_model(adapter=bundled_adapter_path())
    _, plain_file = onnx_forward(bundled, tmp_path, threads=1)
    forward, adapted_file = onnx_forward(adapted, tmp_path, threads=1)
    assert adapted_file != plain_file  # same files on disk, other weights: another export
    assert np.abs(forward(SENTENCES) - vectors(adapted, SENTENCES)).max() < 1e-5


def test_training_pulls_same_label_questions_together(bundled: Any) -> None:
    hours = ["when do you open", "what are your opening hours", "are you open on sunday"]
    pay = ["can I pay by card", "do you take credit cards", "is cash accepted"]
    texts, labels = hours + pay, ["hours"] * 3 + ["pay"] * 3
    recipe = adapter.Recipe(epochs=40, batch=6, learning_rate=5e-3)
    weights = adapter.train_adapter(bundled, texts, labels, recipe)
    trained = load_sentence_model()
    adapter.merge(trained, weights)

    def margin(model: Any) -> float:
        v = vectors(model, texts)
        sim = v @ v.T
        same = (sim[:3, :3].sum() - 3) / 6 + (sim[3:, 3:].sum() - 3) / 6
        return float(same / 2 - sim[:3, 3:].mean())

    assert margin(trained) > margin(bundled) + 0.1
    assert np.abs(vectors(bundled, texts) - vectors(load_sentence_model(), texts)).max() < 1e-6


def test_the_manifest_says_how_the_adapter_and_its_cache_policy_were_made() -> None:
    """bench/tune_encoder.py writes the recipe, the data and the cache policy it chose on the
    folds; the policy must be one the settings can express."""
    made = json.loads(bundled_adapter_path().with_suffix(".json").read_text())
    assert made["recipe"] == asdict(adapter.Recipe())
    chosen = made["cache_policy"]
    settings = load_settings(
        VOICE_AGENT_CACHE_THRESHOLD=chosen["threshold"],
        VOICE_AGENT_CACHE_AGREE_MASS=chosen["agree_mass"],
        VOICE_AGENT_CACHE_AGREE_GAP=chosen["agree_gap"],
    )
    assert settings.cache_threshold == chosen["threshold"]
    assert chosen["agree_floor"] == CachePolicy().agree_floor  # the one part not a setting


def test_the_setting_chooses_the_adapter_and_a_wrong_path_stops_start_up(bundled: Any) -> None:
    shipped = vectors(bundled, SENTENCES)
    assert np.abs(vectors(encoder_model("none"), SENTENCES) - shipped).max() < 1e-6
    assert np.abs(vectors(encoder_model("bundled"), SENTENCES) - shipped).max() > 1e-3
    with pytest.raises(ConfigError, match="not found"):
        encoder_model("/nowhere/adapter.npz")
