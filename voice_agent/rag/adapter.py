"""A low-rank update to the encoder's weights that puts questions wanting the same answer closer
together than the bundled all-MiniLM-L6-v2 does, and questions one purpose apart further away.

The bundled model was trained for general sentence similarity; the cache and the intent head ask
a narrower question, "would one answer serve both?". A rank-8 update of every linear layer of
the transformer, trained with a supervised contrastive loss on labelled questions
(`bench/tune_encoder.py` trains it on the CLINC150 domains that tuning may use), is merged into
the weights at load, W + B·A, so the adapted model costs exactly what the bundled one costs on
PyTorch and on ONNX Runtime, and the same file gives the same weights on every machine. What it
buys and costs (more repeat questions served, worse passage retrieval) is in docs/cache.md; the
service uses it only when `VOICE_AGENT_ENCODER_ADAPTER` asks.

Stored as `<name>.npz` (the A and B of each layer) beside `<name>.json`, the manifest saying how
it was made; `bench/tune_encoder.py` writes both.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from voice_agent.errors import ConfigError

Weights = dict[str, npt.NDArray[np.float32]]

# The linear layers of each BERT block that the update touches, by their path in the block.
ADAPTED = (
    "attention.self.query",
    "attention.self.key",
    "attention.self.value",
    "attention.output.dense",
    "intermediate.dense",
    "output.dense",
)


@dataclass(frozen=True, slots=True)
class Recipe:
    """How an adapter is trained; recorded in its manifest."""

    rank: int = 8
    epochs: float = 1.0
    learning_rate: float = 1e-3
    temperature: float = 0.1  # of the contrastive loss: lower pushes close rivals apart harder
    batch: int = 64
    seed: int = 0
    threads: int = 2  # torch's, fixed so that a re-run on another machine adds the same way


def _linears(model: Any) -> dict[str, Any]:
    """Every adapted linear layer of a sentence-transformers model, by a stable name."""
    transformer = model[0].auto_model
    found: dict[str, Any] = {}
    for number, block in enumerate(transformer.encoder.layer):
        for path in ADAPTED:
            module = block
            for part in path.split("."):
                module = getattr(module, part)
            found[f"layer.{number}.{path}"] = module
    return found


def _contrastive_loss(vectors: Any, labels: Any, temperature: float) -> Any:
    """Supervised contrastive loss: each question's same-label batch mates against the rest."""
    import torch

    similarity = vectors @ vectors.T / temperature
    self_mask = torch.eye(len(labels), dtype=torch.bool)
    positive = (labels[:, None] == labels[None, :]) & ~self_mask
    similarity = similarity.masked_fill(self_mask, float("-inf"))
    log_prob = similarity - torch.logsumexp(similarity, dim=1, keepdim=True)
    log_prob = log_prob.masked_fill(self_mask, 0.0)
    anchors = positive.any(dim=1)
    per_anchor = (log_prob * positive).sum(dim=1)[anchors] / positive.sum(dim=1)[anchors]
    return -per_anchor.mean()


def train_adapter(
    model: Any,
    texts: Sequence[str],
    labels: Sequence[str],
    recipe: Recipe = Recipe(),
    progress: Callable[[int, int, float], None] | None = None,
) -> Weights:
    """Train a low-rank update of `model` (left unchanged) on labelled texts; returns its weights.

    Batches are random draws of the texts; a text whose label has no batch mate adds nothing.
    `progress(step, steps, loss)` is called every 20 steps."""
    import copy

    import torch

    if len(texts) != len(labels) or len(set(labels)) < 2:
        raise ValueError("an adapter needs texts with at least two different labels")
    torch.manual_seed(recipe.seed)
    draw = random.Random(recipe.seed)
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(recipe.threads)
    student = copy.deepcopy(model)
    for parameter in student.parameters():
        parameter.requires_grad_(False)
    factors: dict[str, tuple[torch.nn.Parameter, torch.nn.Parameter]] = {}
    for name, linear in _linears(student).items():
        a = torch.nn.Parameter(torch.randn(recipe.rank, linear.in_features) * 0.01)
        b = torch.nn.Parameter(torch.zeros(linear.out_features, recipe.rank))
        factors[name] = (a, b)
        linear.register_forward_hook(_low_rank_hook(a, b))
    optimiser = torch.optim.AdamW(
        [p for pair in factors.values() for p in pair], lr=recipe.learning_rate
    )
    names = sorted(set(labels))
    label_ids = torch.tensor([names.index(label) for label in labels])
    prepare = getattr(student, "preprocess", None) or student.tokenize
    steps = max(1, int(recipe.epochs * len(texts) / recipe.batch))
    order: list[int] = []
    student.train()
    try:
        for step in range(steps):
            if len(order) < recipe.batch:
                order += draw.sample(range(len(texts)), len(texts))
            batch, order = order[: recipe.batch], order[recipe.batch :]
            features = prepare([texts[i] for i in batch])
            vectors = torch.nn.functional.normalize(student(features)["sentence_embedding"], dim=1)
            loss = _contrastive_loss(vectors, label_ids[batch], recipe.temperature)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            if progress is not None and step % 20 == 0:
                progress(step, steps, float(loss.item()))
    finally:
        torch.set_num_threads(previous_threads)
    out: Weights = {}
    for name, (a, b) in factors.items():
        out[f"{name}.A"] = a.detach().numpy().astype(np.float32)
        out[f"{name}.B"] = b.detach().numpy().astype(np.float32)
    return out


def _low_rank_hook(a: Any, b: Any) -> Callable[[Any, Any, Any], Any]:
    def hook(_module: Any, inputs: Any, output: Any) -> Any:
        return output + (inputs[0] @ a.T) @ b.T

    return hook


def merge(model: Any, weights: Mapping[str, npt.NDArray[np.float32]]) -> None:
    """Add the update to `model`'s weights in place (W + B·A for every adapted layer)."""
    import torch

    linears = _linears(model)
    wanted = {f"{name}.{part}" for name in linears for part in "AB"}
    if set(weights) != wanted:
        missing, extra = sorted(wanted - set(weights)), sorted(set(weights) - wanted)
        raise ConfigError(
            f"encoder adapter does not fit the model: missing {missing[:3]}, unknown {extra[:3]}"
        )
    with torch.no_grad():
        for name, linear in linears.items():
            a = torch.from_numpy(np.asarray(weights[f"{name}.A"], dtype=np.float32))
            b = torch.from_numpy(np.asarray(weights[f"{name}.B"], dtype=np.float32))
            if b.shape[0] != linear.out_features or a.shape[1] != linear.in_features:
                raise ConfigError(f"encoder adapter layer {name} has the wrong shape")
            linear.weight += (b @ a).to(linear.weight.dtype)


def save(path: Path, weights: Weights, manifest: Mapping[str, Any]) -> None:
    """`path` without suffix: writes `<path>.npz` and `<path>.json`."""
    np.savez_compressed(path.with_suffix(".npz"), **weights)  # type: ignore[arg-type]
    path.with_suffix(".json").write_text(json.dumps(manifest, indent=2) + "\n")


def load(path: Path) -> Weights:
    """The weights saved at `<path>.npz`."""
    file = path.with_suffix(".npz")
    if not file.is_file():
        raise ConfigError(f"encoder adapter not found at {file}")
    with np.load(file) as data:
        return {name: np.asarray(data[name], dtype=np.float32) for name in data.files}
