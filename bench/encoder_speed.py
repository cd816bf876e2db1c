"""The encoder's time for one caller sentence, by the way it runs the bundled all-MiniLM-L6-v2:
PyTorch float32 (the baseline), PyTorch bfloat16, ONNX Runtime float32 and int8, on one thread as
the service runs it, taking turns sentence by sentence so that drift touches all alike. Real
caller sentences: CLINC150 `test` (../shared/data/clinc150). Also how far each one's vectors
are from the baseline's, and each one's time a sentence in batches.

    .venv/bin/python bench/encoder_speed.py [--sentences 600]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# bench/quick_responses.py shares its name with the package: keep this folder off the path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from turn_latency import percentile, row

from voice_agent.rag.encoder import Encoder, load_sentence_model, single_threaded_blas

CLINC = Path(__file__).resolve().parents[2] / "shared" / "data" / "clinc150" / "data_full.json"
BATCH = 16  # sentences a batch, as calls' sentences meet on the encoder under load


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentences", type=int, default=600)
    parser.add_argument("--clinc", type=Path, default=CLINC)
    args = parser.parse_args()
    single_threaded_blas()
    data = json.loads(args.clinc.read_text())
    sentences = [text for text, _ in data["test"]]
    random.Random(7).shuffle(sentences)
    sentences = sentences[: args.sentences]
    model = load_sentence_model()
    with tempfile.TemporaryDirectory() as cache_dir:
        runs = {
            "torch float32": Encoder(model, runtime="torch", precision="float32", cache_size=0),
            "torch bfloat16": Encoder(model, runtime="torch", precision="bfloat16", cache_size=0),
            "onnx float32": Encoder(model, runtime="onnx", cache_dir=Path(cache_dir), cache_size=0),
            "onnx int8": Encoder(
                model, runtime="onnx-int8", cache_dir=Path(cache_dir), cache_size=0
            ),
        }
        chosen = Encoder(model, cache_dir=Path(cache_dir), cache_size=0)
        times: dict[str, list[float]] = {name: [] for name in runs}
        vectors: dict[str, list[np.ndarray]] = {name: [] for name in runs}
        for encoder in runs.values():
            encoder.encode_sync(sentences[:3])  # one-off set-up
        for sentence in sentences:
            for name, encoder in runs.items():
                started = time.perf_counter()
                vector = encoder.encode_sync([sentence])[0]
                times[name].append((time.perf_counter() - started) * 1000)
                vectors[name].append(vector)
        batched: dict[str, float] = dict.fromkeys(runs, 0.0)
        for start in range(0, len(sentences), BATCH):  # the same, BATCH at a time
            for name, encoder in runs.items():
                started = time.perf_counter()
                encoder.encode_sync(sentences[start : start + BATCH])
                batched[name] += (time.perf_counter() - started) * 1000 / len(sentences)
    print(
        f"# encoder_speed: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, "
        f"{len(sentences)} CLINC150 test sentences, one thread; start-up chose "
        f"{chosen.runtime} {chosen.precision}\n"
    )
    print("| one sentence (ms) | n | p50 | p95 | p99 |\n|---|---|---|---|---|")
    for name, values in times.items():
        print(row(name, values))
    print()
    base = np.stack(vectors["torch float32"])
    base_p50 = percentile(times["torch float32"], 50)
    for name, values in times.items():
        cosine = np.sum(base * np.stack(vectors[name]), axis=1)
        print(
            f"{name}: p50 {percentile(values, 50) / base_p50:.2f}x torch float32's; "
            f"{batched[name]:.2f} ms a sentence in batches of {BATCH}; "
            f"cosine to torch float32 min {cosine.min():.6f}, mean {cosine.mean():.6f}"
        )


if __name__ == "__main__":
    main()
