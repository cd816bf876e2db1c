"""The response cache on a real stream of questions: CLINC150 `test` (../shared/data/clinc150),
one stream for the domains the policy was tuned on and one for the domains held out from all
tuning (`bench/clinc_split.py`), each shuffled once as a live service would meet it. A miss
stores an answer labelled with the question's intent; a hit is right when the stored question
has the same intent. Printed for a range of similarity thresholds, for the nearest stored
question alone (as GPTCache does) and for the default policy (the nearest, or an agreeing
neighbourhood), then lookup latency with 100,000 stored questions, embedding included.

    .venv/bin/python bench/cache_quality.py           # report on `test` at the defaults
    .venv/bin/python bench/cache_quality.py --tune    # choose the policy on the tuning `val`
    .venv/bin/python bench/cache_quality.py --adapter # with the encoder's adapter (tune_encoder.py)
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import random
import statistics
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# bench/quick_responses.py shares its name with the package: keep this folder off the path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import numpy as np

from voice_agent.cache.policy import CachePolicy
from voice_agent.cache.store import CacheHit, CacheScope, ResponseCache
from voice_agent.rag.encoder import (
    Encoder,
    bundled_adapter_path,
    load_sentence_model,
    single_threaded_blas,
)

sys.path.insert(0, str(Path(__file__).resolve().parent))
import clinc_split

SCOPE = CacheScope("bench", "answer", "kb1")
NEAREST_ONLY = float("inf")  # agree_mass no neighbourhood can reach
MAX_WRONG_WHEN_TUNING = 0.005
ENTRIES = 100_000
POLICY_FIELDS = ("threshold", "agree_gap", "agree_floor", "agree_mass")
LATENCY_QUERIES = 500  # half the target, for the distance between val and test


def stream(
    rows: list[tuple[str, str]], vectors: np.ndarray, policy: CachePolicy
) -> tuple[int, int, int]:
    """(hits, wrong hits, queries whose intent was seen before)."""
    cache = ResponseCache(ttl_s=1e9, max_entries=10**6, policy=policy)
    seen: set[str] = set()
    hits = wrong = repeat = 0
    for (text, intent), vector in zip(rows, vectors, strict=True):
        repeat += intent in seen
        result = cache.lookup(text, vector, SCOPE)
        if isinstance(result, CacheHit):
            hits += 1
            wrong += result.entry.answer != intent
        else:
            cache.store(text, vector, intent, SCOPE)
        seen.add(intent)
    return hits, wrong, repeat


def row(label: str, policy: CachePolicy, counts: tuple[int, int, int]) -> str:
    hits, wrong, repeat = counts
    return (
        f"| {label} | {policy.threshold:.2f} | {'on' if policy.check_topics else 'off'} | "
        f"{hits}/{repeat} ({hits / repeat:.1%}) | {wrong}/{max(hits, 1)} "
        f"({wrong / max(hits, 1):.2%}) |"
    )


def tune(rows: list[tuple[str, str]], vectors: np.ndarray) -> None:
    print(
        "\n| threshold | agree_mass | agree_gap | hits / seen before | wrong / hits |"
        "\n|---|---|---|---|---|"
    )
    best: tuple[float, CachePolicy] | None = None
    for threshold, mass, gap in itertools.product(
        (0.86, 0.88, 0.90), (1.0, 1.25, 1.5, 2.0), (0.10, 0.15, 0.20)
    ):
        policy = CachePolicy(threshold=threshold, agree_mass=mass, agree_gap=gap)
        hits, wrong, repeat = stream(rows, vectors, policy)
        print(
            f"| {threshold:.2f} | {mass} | {gap} | {hits / repeat:.1%} | "
            f"{wrong / max(hits, 1):.2%} |"
        )
        if wrong / max(hits, 1) <= MAX_WRONG_WHEN_TUNING and (best is None or hits > best[0]):
            best = (hits, policy)
    print(f"\nchosen (most hits with wrong <= {MAX_WRONG_WHEN_TUNING:.1%}): {best}")


def report(rows: list[tuple[str, str]], vectors: np.ndarray, default: CachePolicy) -> None:
    print(
        "\n| policy | threshold | topic guard | hits / queries seen before | wrong hits / hits |"
        "\n|---|---|---|---|---|"
    )
    for threshold in (0.70, 0.75, 0.80, 0.85, 0.90, 0.95):
        nearest = replace(default, threshold=threshold, agree_mass=NEAREST_ONLY)
        print(row("nearest only", nearest, stream(rows, vectors, nearest)))
    for threshold in (0.85, 0.88, 0.90, 0.92, 0.95):
        policy = replace(default, threshold=threshold)
        label = "**default**" if policy == default else "nearest or agreeing neighbours"
        print(row(label, policy, stream(rows, vectors, policy)))
    no_topics = replace(default, check_topics=False)
    print(row("default without the topic-word guard", no_topics, stream(rows, vectors, no_topics)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clinc", type=Path, default=clinc_split.CLINC)
    parser.add_argument("--tune", action="store_true", help="choose the policy on `val`")
    parser.add_argument("--no-latency", action="store_true", help="skip the 100,000-entry run")
    parser.add_argument(
        "--adapter",
        action="store_true",
        help="the encoder with bench/tune_encoder.py's adapter, at the policy chosen for it",
    )
    parser.add_argument(
        "--runtime", choices=["auto", "onnx", "onnx-int8", "torch"], default="auto",
        help="the encoder's runtime (VOICE_AGENT_ENCODER_RUNTIME): measure another's quality",
    )  # fmt: skip
    parser.add_argument(
        "--precision", choices=["float32", "bfloat16"], default="float32",
        help="the encoder's precision (VOICE_AGENT_ENCODER_PRECISION; bfloat16 runs on torch)",
    )  # fmt: skip
    args = parser.parse_args()
    single_threaded_blas()  # as the service does
    default = CachePolicy()
    if args.adapter:
        encoder = Encoder(load_sentence_model(adapter=bundled_adapter_path()), cache_size=0)
        chosen = json.loads(bundled_adapter_path().with_suffix(".json").read_text())
        default = replace(default, **{k: chosen["cache_policy"][k] for k in POLICY_FIELDS})
    else:
        encoder = Encoder(
            load_sentence_model(), cache_size=0, runtime=args.runtime, precision=args.precision
        )
    sides: tuple[clinc_split.Side, ...] = ("tuned",) if args.tune else ("tuned", "held_out")
    split = "val" if args.tune else "test"
    print(
        f"# cache_quality: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, "
        f"CLINC150 {split}, encoder {encoder.runtime} {encoder.precision}"
        f"{' with the adapter' if args.adapter else ''}, {default}; held out from "
        f"tuning: {', '.join(clinc_split.HELD_OUT_DOMAINS)} and half of small_talk and meta"
    )
    for side in sides:
        rows = clinc_split.rows(side, split, clinc=args.clinc)
        random.Random(150).shuffle(rows)
        vectors = encoder.encode_sync([t for t, _ in rows])
        name = "tuned-on domains" if side == "tuned" else "held-out domains"
        print(
            f"\n## {name}: a stream of {len(rows)} questions, {len({i for _, i in rows})} intents"
        )
        if args.tune:
            tune(rows, vectors)
        else:
            report(rows, vectors, default)
    if not args.tune and not args.no_latency:
        data = json.loads((args.clinc / "data_full.json").read_text())
        asyncio.run(lookup_latency(encoder, data, rows))


async def lookup_latency(
    encoder: Encoder, data: dict[str, list[list[str]]], rows: list[tuple[str, str]]
) -> None:
    """100,000 stored questions: every CLINC150 utterance, then paraphrase-like copies of
    random ones (the vector plus noise, 0.78 to 0.94 similar to its source). Each lookup embeds
    a new question the way a turn does (`Encoder.embed`, on its worker thread), then searches;
    the HNSW index's answers are checked against a brute-force scan."""
    texts = [t for split in ("train", "val", "test") for t, _ in data[split]]
    real = encoder.encode_sync(texts)
    rng = np.random.default_rng(0)
    sources = real[rng.integers(0, len(real), size=ENTRIES - len(real))]
    noise = rng.normal(size=sources.shape).astype(np.float32)
    lengths = rng.uniform(0.35, 0.8, size=(len(noise), 1))
    noise *= lengths / np.linalg.norm(noise, axis=1, keepdims=True)
    padded = sources + noise
    padded /= np.linalg.norm(padded, axis=1, keepdims=True)
    matrix = np.vstack([real, padded]).astype(np.float32)
    cache = ResponseCache(ttl_s=1e9, max_entries=10**6)
    for i, vector in enumerate(matrix):
        cache.store(texts[i] if i < len(texts) else f"q{i}", vector, f"a{i}", SCOPE)
    embed_ms: list[float] = []
    search_ms: list[float] = []
    total_ms: list[float] = []
    asked: list[np.ndarray] = []
    for text, _ in rows[:LATENCY_QUERIES]:
        question = text + " please"  # not an exact hit: the semantic layer does the work
        started = time.perf_counter()
        vector = await encoder.embed(question)
        embedded = time.perf_counter()
        cache.lookup(question, vector, SCOPE)
        done = time.perf_counter()
        embed_ms.append((embedded - started) * 1000)
        search_ms.append((done - embedded) * 1000)
        total_ms.append((done - started) * 1000)
        asked.append(vector)
    # Recall of the neighbours the policy can use (similarity 0.6 or more), after the timed
    # loop: a big numpy product leaves BLAS threads spinning that would slow the next embedding.
    found = relevant = 0
    for vector in asked:
        similarities = matrix @ vector
        truth = {int(i) for i in np.argsort(-similarities)[:5] if similarities[i] >= 0.6}
        got = {int(e.answer[1:]) for _, e in cache.nearest(vector, SCOPE, 5)}
        found += len(truth & got)
        relevant += len(truth)
    print(f"\nlookup with {len(cache):,} entries (n={LATENCY_QUERIES}, back to back):\n")
    print("| part | p50 (ms) | p95 (ms) | p99 (ms) | max (ms) |\n|---|---|---|---|---|")
    for name, values in (("embedding", embed_ms), ("cache lookup (HNSW)", search_ms),
                         ("both", total_ms)):  # fmt: skip
        values.sort()
        print(
            f"| {name} | {statistics.median(values):.2f} | "
            f"{values[int(0.95 * len(values))]:.2f} | {values[int(0.99 * len(values))]:.2f} | "
            f"{values[-1]:.2f} |"
        )
    print(
        f"\nHNSW found {found}/{relevant} ({found / max(relevant, 1):.1%}) of the true five "
        "nearest at similarity 0.6 or more"
    )


if __name__ == "__main__":
    main()
