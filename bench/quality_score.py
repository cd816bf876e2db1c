"""Does the quality score separate right answers from wrong ones? CLINC150 `test` questions
(../shared/data/clinc150) of the intents in bench/data/quality_answers.yaml, each paired with
the answer written for its own intent (right) and with another intent's answer (wrong). Prints
the ROC AUC of the score and of each part, and the score's distribution for both.

    .venv/bin/python bench/quality_score.py
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
from datetime import UTC, datetime
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# bench/quick_responses.py shares its name with the package: keep this folder off the path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import numpy as np
import yaml

from voice_agent.quality.score import score_answer
from voice_agent.rag.encoder import Encoder, load_sentence_model, single_threaded_blas

HERE = Path(__file__).resolve().parent
CLINC = HERE.parents[1] / "shared" / "data" / "clinc150" / "data_full.json"
ANSWERS = HERE / "data" / "quality_answers.yaml"


def roc_auc(right: list[float], wrong: list[float]) -> float:
    """The chance that a right answer outscores a wrong one (ties count half)."""
    values = np.array(right + wrong)
    order = values.argsort(kind="mergesort")
    ranks = np.empty(len(values))
    ranks[order] = np.arange(1, len(values) + 1)
    for value in np.unique(values):  # average ranks over ties
        tied = values == value
        ranks[tied] = ranks[tied].mean()
    n_right, n_wrong = len(right), len(wrong)
    return float((ranks[:n_right].sum() - n_right * (n_right + 1) / 2) / (n_right * n_wrong))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clinc", type=Path, default=CLINC)
    args = parser.parse_args()
    answers: dict[str, str] = yaml.safe_load(ANSWERS.read_text())
    data = json.loads(args.clinc.read_text())
    rows = [(t, i) for t, i in data["test"] if i in answers]
    single_threaded_blas()
    encoder = Encoder(load_sentence_model(), cache_size=0)
    intents = sorted(answers)
    answer_vectors = dict(
        zip(intents, encoder.encode_sync([answers[i] for i in intents]), strict=True)
    )
    question_vectors = encoder.encode_sync([t for t, _ in rows])
    rng = random.Random(150)
    scores: dict[str, tuple[list[float], list[float]]] = {
        name: ([], []) for name in ("score", "relevance", "consistency", "speech")
    }
    for (question, intent), vector in zip(rows, question_vectors, strict=True):
        other = rng.choice([i for i in intents if i != intent])
        for side, chosen in ((0, intent), (1, other)):
            result = score_answer(
                answers[chosen], vector, answer_vectors[chosen], question=question
            )
            scores["score"][side].append(result.score)
            for part in ("relevance", "consistency", "speech"):
                scores[part][side].append(result.parts[part])
    print(
        f"# quality_score: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, CLINC150 test, "
        f"{len(intents)} intents, {len(rows)} questions, each with its own intent's answer and "
        f"another's; encoder {encoder.precision}\n"
    )
    print("| measure | ROC AUC | right: p10 / p50 / p90 | wrong: p10 / p50 / p90 |")
    print("|---|---|---|---|")
    for name, (right, wrong) in scores.items():

        def spread(values: list[float]) -> str:
            q = statistics.quantiles(values, n=10)
            return f"{q[0]:.2f} / {statistics.median(values):.2f} / {q[-1]:.2f}"

        print(f"| {name} | {roc_auc(right, wrong):.3f} | {spread(right)} | {spread(wrong)} |")


if __name__ == "__main__":
    main()
