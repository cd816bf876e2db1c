"""The response cache on a real stream of questions: CLINC150 `test` (../shared/data/clinc150),
shuffled once as a live service would meet it. A miss stores an answer labelled with the
question's intent; a hit is right when the stored question has the same intent. Printed for
a range of similarity thresholds, with and without the topic-word guard (a table like
GPTCache's), then lookup latency with 100,000 stored questions, embedding included.

    .venv/bin/python bench/cache_quality.py
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# bench/quick_responses.py shares its name with the package: keep this folder off the path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import numpy as np

from voice_agent.rag.encoder import Encoder, load_sentence_model
from voice_agent.response_cache import CacheHit, CacheScope, ResponseCache

CLINC = Path(__file__).resolve().parents[2] / "shared" / "data" / "clinc150" / "data_full.json"
SCOPE = CacheScope("bench", "answer", 1)


def stream(
    rows: list[tuple[str, str]], vectors: np.ndarray, threshold: float, check_topics: bool
) -> tuple[int, int, int, int]:
    """(hits, wrong hits, queries whose intent was seen before, exact hits)."""
    cache = ResponseCache(
        ttl_s=1e9, max_entries=10**6, threshold=threshold, check_topics=check_topics
    )
    seen: set[str] = set()
    hits = wrong = repeat = exact = 0
    for (text, intent), vector in zip(rows, vectors, strict=True):
        repeat += intent in seen
        result = cache.lookup(text, vector, SCOPE)
        if isinstance(result, CacheHit):
            hits += 1
            exact += result.kind == "exact"
            wrong += result.entry.answer != intent
        else:
            cache.store(text, vector, intent, SCOPE)
        seen.add(intent)
    return hits, wrong, repeat, exact


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clinc", type=Path, default=CLINC)
    args = parser.parse_args()
    data = json.loads(args.clinc.read_text())
    rows = [(t, i) for t, i in data["test"]]
    random.Random(150).shuffle(rows)
    encoder = Encoder(load_sentence_model(), cache_size=0)
    vectors = encoder.encode_sync([t for t, _ in rows])
    print(
        f"# cache_quality: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, "
        f"CLINC150 test stream of {len(rows)} questions ({len({i for _, i in rows})} intents), "
        f"encoder {encoder.precision}"
    )
    print(
        "\n| threshold | topic guard | hits / queries seen before | wrong hits / hits |"
        "\n|---|---|---|---|"
    )
    for check_topics in (False, True):
        for threshold in (0.70, 0.75, 0.80, 0.85, 0.90, 0.95):
            hits, wrong, repeat, _ = stream(rows, vectors, threshold, check_topics)
            print(
                f"| {threshold:.2f} | {'on' if check_topics else 'off'} | "
                f"{hits}/{repeat} ({hits / repeat:.1%}) | {wrong}/{max(hits, 1)} "
                f"({wrong / max(hits, 1):.2%}) |"
            )
    # Lookup latency with 100,000 stored questions: every CLINC utterance, then random unit
    # vectors up to the count (they cost the same to scan).
    all_texts = [t for split in ("train", "val", "test") for t, _ in data[split]]
    filler = encoder.encode_sync(all_texts)
    rng = np.random.default_rng(0)
    extra = rng.normal(size=(100_000 - len(filler), filler.shape[1])).astype(np.float32)
    extra /= np.linalg.norm(extra, axis=1, keepdims=True)
    cache = ResponseCache(ttl_s=1e9, max_entries=10**6, threshold=0.9)
    for i, vector in enumerate(np.vstack([filler, extra])):
        cache.store(all_texts[i] if i < len(all_texts) else f"q{i}", vector, "a", SCOPE)
    embed_ms: list[float] = []
    search_ms: list[float] = []
    total_ms: list[float] = []
    for text, _ in rows[:500]:
        question = text + " please"  # not an exact hit: the semantic layer does the work
        started = time.perf_counter()
        vector = encoder.encode_sync([question])[0]
        embedded = time.perf_counter()
        cache.lookup(question, vector, SCOPE)
        done = time.perf_counter()
        embed_ms.append((embedded - started) * 1000)
        search_ms.append((done - embedded) * 1000)
        total_ms.append((done - started) * 1000)
    print(f"\nlookup with {len(cache):,} entries (n=500):\n")
    print("| part | p50 (ms) | p99 (ms) | max (ms) |\n|---|---|---|---|")
    for name, values in (("embedding", embed_ms), ("cache lookup", search_ms),
                         ("both", total_ms)):  # fmt: skip
        values.sort()
        print(
            f"| {name} | {statistics.median(values):.2f} | "
            f"{values[int(0.99 * len(values))]:.2f} | {values[-1]:.2f} |"
        )


if __name__ == "__main__":
    main()
