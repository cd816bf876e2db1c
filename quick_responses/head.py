"""A linear classifier over sentence embeddings: the pack's intents plus `other`, for every
real request. Nearest-example matching only knows what small talk looks like; the head has
also seen thousands of real requests, so it can tell "thanks" from "thanks, what's the fee"
even when both are near a "thanks" example. Trained by `bench/quick_responses.py --tune`;
at run time it is one matrix product and a softmax."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from quick_responses.intents import Vector

OTHER = "other"


@dataclass(frozen=True, slots=True)
class IntentHead:
    classes: tuple[str, ...]
    weights: Vector  # classes x dimension
    bias: Vector  # classes
    provenance: str = ""

    def probabilities(self, vector: Vector) -> Vector:
        logits = self.weights @ vector + self.bias
        logits = logits - logits.max()
        exp = np.exp(logits)
        return np.asarray(exp / exp.sum(), dtype=np.float32)

    def best(self, vector: Vector) -> tuple[str, float]:
        """The most likely class (possibly `other`) and its probability."""
        probs = self.probabilities(vector)
        index = int(np.argmax(probs))
        return self.classes[index], float(probs[index])

    def save(self, path: Path) -> None:
        np.savez_compressed(
            path,
            classes=np.array(self.classes),
            weights=self.weights.astype(np.float32),
            bias=self.bias.astype(np.float32),
            provenance=np.array(self.provenance),
        )

    @classmethod
    def load(cls, path: Path) -> IntentHead:
        with np.load(path, allow_pickle=False) as data:
            return cls(
                classes=tuple(str(c) for c in data["classes"]),
                weights=np.asarray(data["weights"], dtype=np.float32),
                bias=np.asarray(data["bias"], dtype=np.float32),
                provenance=str(data["provenance"]),
            )


def head_path(pack_path: Path) -> Path:
    return pack_path.with_name(pack_path.stem + ".head.npz")
