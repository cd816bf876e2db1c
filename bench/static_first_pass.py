"""A static first pass for the encoder, measured before it is built into the service: a table of
one vector per word piece, distilled here from the bundled all-MiniLM-L6-v2, turns a sentence
into a vector in microseconds. Is that good enough to replace the transformer, or to spare it
for the utterances that are clearly far from every template and every cached question?

Distillation (our own): each of the tokenizer's 30,522 word pieces goes through the transformer
alone ([CLS] piece [SEP], mean-pooled, as the sentence pipeline pools); the table is centred. A
sentence's static vector is the idf-weighted mean of its pieces' rows, mapped into the
transformer's space by a linear map fitted by least squares. The idf weights and the map are
fitted on the tuning side's `train` split of CLINC150 (bench/clinc_split.py); the first pass's
thresholds are chosen on the tuning side's `val`; everything is reported on `test`, both sides,
and retrieval on bench/retrieval.py's questions.

    .venv/bin/python bench/static_first_pass.py
"""

from __future__ import annotations

import importlib.util
import math
import os
import random
import statistics
import sys
import time
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]

import numpy as np
import torch

from quick_responses.head import IntentHead, head_path
from quick_responses.pack import DEFAULT_PACK, load_pack
from quick_responses.responder import QuickResponder
from voice_agent.cache.policy import CachePolicy
from voice_agent.cache.store import CacheHit, CacheScope, ResponseCache
from voice_agent.rag.documents import load_documents
from voice_agent.rag.encoder import Encoder, load_sentence_model, single_threaded_blas
from voice_agent.rag.fusion import reciprocal_rank_fusion
from voice_agent.rag.knowledge_base import KnowledgeBase
from voice_agent.settings import DEMO_KB_PATH

sys.path.insert(0, str(HERE))
import clinc_split


def bench_module(name: str) -> Any:
    """A bench script as a module (bench/quick_responses.py shares its name with the package)."""
    spec = importlib.util.spec_from_file_location(f"bench_{name}", HERE / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


quick_bench = bench_module("quick_responses")
cache_bench = bench_module("cache_quality")
SCOPE = CacheScope("bench", "answer", "kb1")
SAFETY = 0.02  # below the lowest similarity of a decision the transformer made on val
TIMED = 300


def distill(model: Any) -> np.ndarray:
    """One row per word piece: the transformer's mean-pooled output for the piece alone."""
    tokenizer, transformer = model.tokenizer, model[0].auto_model
    ids = torch.arange(len(tokenizer))
    rows = np.zeros((len(ids), transformer.config.hidden_size), dtype=np.float32)
    with torch.inference_mode():
        for start in range(0, len(ids), 2048):
            piece = ids[start : start + 2048]
            cls = torch.full_like(piece, tokenizer.cls_token_id)
            sep = torch.full_like(piece, tokenizer.sep_token_id)
            batch = torch.stack([cls, piece, sep], dim=1)
            out = transformer(input_ids=batch, attention_mask=torch.ones_like(batch))
            rows[start : start + len(piece)] = out.last_hidden_state.mean(dim=1).numpy()
    return rows - rows.mean(axis=0)


class StaticEncoder:
    runtime = "static"
    precision = "float32"

    def __init__(self, tokenizer: Any, table: np.ndarray) -> None:
        self._tokenizer = tokenizer
        self._table = table
        self._idf = np.ones(len(table), dtype=np.float32)
        self._map: np.ndarray | None = None

    def _pooled(self, texts: list[str]) -> np.ndarray:
        pieces = self._tokenizer(texts, add_special_tokens=False)["input_ids"]
        out = np.zeros((len(texts), self._table.shape[1]), dtype=np.float32)
        for i, ids in enumerate(pieces):
            if ids:
                weights = self._idf[ids][:, None]
                out[i] = (self._table[ids] * weights).sum(axis=0) / weights.sum()
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)

    def fit(self, texts: list[str], targets: np.ndarray) -> None:
        """idf from `texts`, then the least-squares map from their static vectors to
        `targets` (the transformer's)."""
        seen: Counter[int] = Counter()
        for ids in self._tokenizer(texts, add_special_tokens=False)["input_ids"]:
            seen.update(set(ids))
        self._idf[:] = math.log(len(texts))
        for piece, count in seen.items():
            self._idf[piece] = math.log(len(texts) / count)
        x = np.hstack([self._pooled(texts), np.ones((len(texts), 1), dtype=np.float32)])
        ridge = 1e-2 * np.eye(x.shape[1], dtype=np.float32)
        self._map = np.linalg.solve(x.T @ x + ridge, x.T @ targets)

    def encode_sync(self, texts: list[str]) -> np.ndarray:
        assert self._map is not None
        pooled = self._pooled(list(texts))
        mapped = np.hstack([pooled, np.ones((len(pooled), 1), dtype=np.float32)]) @ self._map
        return (mapped / np.linalg.norm(mapped, axis=1, keepdims=True)).astype(np.float32)


def timed(encode: Any, texts: list[str]) -> tuple[float, float]:
    """ms per sentence: one at a time (p50), and in batches of 16."""
    single = []
    for text in texts:
        started = time.perf_counter()
        encode([text])
        single.append((time.perf_counter() - started) * 1000)
    started = time.perf_counter()
    for i in range(0, len(texts), 16):
        encode(texts[i : i + 16])
    return statistics.median(single), (time.perf_counter() - started) * 1000 / len(texts)


def quick_scores(
    responder: QuickResponder, rows: list[tuple[str, str]], vectors: np.ndarray, keep: np.ndarray
) -> list[Any]:
    """The quick bench's scored utterances; those the first pass lets go decide nothing."""
    scored = quick_bench.score_all(responder, rows, vectors)
    return [
        s if k else replace(s, intent=None, score=0.0, kind="none", guard=None)
        for s, k in zip(scored, keep, strict=True)
    ]


def cache_stream(
    rows: list[tuple[str, str]],
    vectors: np.ndarray,
    first: np.ndarray | None,
    floor: float,
    policy: CachePolicy,
) -> tuple[int, int, int, int, list[float]]:
    """The cache bench's stream; with `first` (static vectors), a question whose first-pass
    similarity to every stored question is under `floor` misses without the transformer.
    (hits, wrong, seen before, let go, first-pass similarity of each semantic hit)."""
    cache = ResponseCache(ttl_s=1e9, max_entries=10**6, policy=policy)
    stored: list[np.ndarray] = []
    seen: set[str] = set()
    hits = wrong = repeat = let_go = 0
    hit_similarity: list[float] = []
    for i, ((text, intent), vector) in enumerate(zip(rows, vectors, strict=True)):
        repeat += intent in seen
        seen.add(intent)
        nearest = (
            float((np.vstack(stored) @ first[i]).max()) if first is not None and stored else 1.0
        )
        result = cache.lookup_exact(text, SCOPE)
        if result is None and nearest < floor:
            let_go += 1
        elif result is None:
            looked = cache.lookup_semantic(text, vector, SCOPE)
            result = looked if isinstance(looked, CacheHit) else None
            if result is not None:
                hit_similarity.append(nearest)
        if result is not None:
            hits += 1
            wrong += result.entry.answer != intent
        else:
            cache.store(text, vector, intent, SCOPE)
            stored.append(vector)
    return hits, wrong, repeat, let_go, hit_similarity


def main() -> None:
    single_threaded_blas()
    torch.set_num_threads(os.cpu_count() or 1)
    started = time.perf_counter()
    model = load_sentence_model()
    static = StaticEncoder(model.tokenizer, distill(model))
    distilled_s = time.perf_counter() - started
    encoder = Encoder(model, cache_size=0)
    train = clinc_split.rows("tuned", "train", "oos_train")
    train_texts = [t for t, _ in train]
    static.fit(train_texts, encoder.encode_sync(train_texts))
    print(
        f"# static_first_pass: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores; "
        f"table of {len(model.tokenizer)} pieces distilled in {distilled_s:.0f} s; idf and map "
        f"fitted on {len(train)} tuning-side train sentences; transformer: {encoder.runtime} "
        f"{encoder.precision}"
    )
    sides = {
        "tuned-on": clinc_split.rows("tuned", "test", "oos_test"),
        "held-out": clinc_split.rows("held_out", "test", "oos_test"),
    }
    sample = random.Random(0).sample([t for rows in sides.values() for t, _ in rows], TIMED)
    t_single, t_batch = timed(encoder.encode_sync, sample)
    s_single, s_batch = timed(static.encode_sync, sample)
    print(f"\nms a sentence ({TIMED} test sentences): transformer {t_single:.2f} one at a time, "
          f"{t_batch:.2f} in batches of 16; static {s_single:.3f} / {s_batch:.3f}")  # fmt: skip

    pack = load_pack(DEFAULT_PACK)
    head = IntentHead.load(head_path(DEFAULT_PACK))
    examples = [e for i in pack.intents.values() for e in i.examples]
    example_vectors = encoder.encode_sync(examples)
    responder = QuickResponder(pack, example_vectors, head=head)
    alone = QuickResponder(pack, static.encode_sync(examples), head=head)
    thresholds = {name: spec.threshold for name, spec in pack.intents.items()}
    fired = quick_bench.fires

    val = clinc_split.rows("tuned", "val", "oos_val")
    val_t = encoder.encode_sync([t for t, _ in val])
    val_near = (static.encode_sync([t for t, _ in val]) @ example_vectors.T).max(axis=1)
    val_scored = quick_scores(responder, val, val_t, np.ones(len(val), dtype=bool))
    quick_floor = min(n for s, n in zip(val_scored, val_near, strict=True) if fired(s, thresholds))
    quick_floor -= SAFETY

    policy = CachePolicy()
    val_rows = clinc_split.rows("tuned", "val")
    random.Random(150).shuffle(val_rows)
    val_vectors = encoder.encode_sync([t for t, _ in val_rows])
    val_first = static.encode_sync([t for t, _ in val_rows])
    *_, similarities = cache_stream(val_rows, val_vectors, val_first, -1.0, policy)
    cache_floor = min(similarities) - SAFETY
    print(f"first pass, chosen on the tuning side's val: templates need a similarity of "
          f"{quick_floor:.3f} to a pack example, the cache {cache_floor:.3f} to a stored "
          f"question, or the utterance is let go without the transformer")  # fmt: skip

    print("\n| side | agreement with the transformer (cosine: mean / 1st pct / min) "
          "| templates: transformer | static alone | first pass + transformer "
          "| utterances let go by the first pass |\n|---|---|---|---|---|---|")  # fmt: skip
    for side, rows in sides.items():
        texts = [t for t, _ in rows]
        tv, sv = encoder.encode_sync(texts), static.encode_sync(texts)
        cosine = (tv * sv).sum(axis=1)
        keep = (sv @ example_vectors.T).max(axis=1) >= quick_floor
        figures = []
        for scored in (
            quick_scores(responder, rows, tv, np.ones(len(rows), dtype=bool)),
            quick_scores(alone, rows, sv, np.ones(len(rows), dtype=bool)),
            quick_scores(responder, rows, tv, keep),
        ):
            recall, false_rate = quick_bench.rates(scored, thresholds)
            figures.append(f"{recall:.1%} / {false_rate:.2%}")
        print(f"| {side} | {cosine.mean():.3f} / {np.percentile(cosine, 1):.3f} / "
              f"{cosine.min():.3f} | {' | '.join(figures)} | {1 - keep.mean():.0%} |")  # fmt: skip

    print("\n| side | cache: transformer (hits / wrong hits) | static alone "
          "| first pass + transformer | questions let go by the first pass |"
          "\n|---|---|---|---|---|")  # fmt: skip
    for side, (clinc_side, name) in {"tuned-on": ("tuned", "test"),
                                     "held-out": ("held_out", "test")}.items():  # fmt: skip
        rows = clinc_split.rows(clinc_side, name)
        random.Random(150).shuffle(rows)
        tv = encoder.encode_sync([t for t, _ in rows])
        sv = static.encode_sync([t for t, _ in rows])
        figures = []
        for vectors, first, floor in ((tv, None, -1.0), (sv, None, -1.0), (tv, sv, cache_floor)):
            hits, wrong, repeat, let_go, _ = cache_stream(rows, vectors, first, floor, policy)
            figures.append(f"{hits / repeat:.1%} / {wrong / max(hits, 1):.2%}")
        print(f"| {side} | {' | '.join(figures)} | {let_go / len(rows):.0%} |")
    retrieval(encoder, static)


def retrieval(encoder: Encoder, static: StaticEncoder) -> None:
    """bench/retrieval.py's questions ranked with the static vector as the query (the chunks
    keep the transformer's vectors), against the transformer's query vector."""
    questions = bench_module("retrieval").QUESTIONS
    kb = KnowledgeBase(encoder, top_k=5)
    index = kb.load(load_documents(DEMO_KB_PATH))
    counts = {name: [0, 0] for name in ("transformer", "static")}
    for question, documents in questions:
        good = documents | {"faq"}
        bm25 = index.bm25_ranking(question)
        for name, query in (("transformer", encoder), ("static", static)):
            dense = index.dense_ranking(query.encode_sync([question])[0])
            fused = [i for i, _ in reciprocal_rank_fusion([bm25, dense], top=5)]
            ids = [index.chunks[i].doc_id for i in fused]
            counts[name][0] += bool(ids) and ids[0] in good
            counts[name][1] += bool(set(ids[:3]) & good)
    print(f"\nretrieval, fused ranking ({len(questions)} questions, bench/retrieval.py): "
          + "; ".join(f"{name} query {a}/{len(questions)} first, {b}/{len(questions)} in the "
                      f"top 3" for name, (a, b) in counts.items()))  # fmt: skip


if __name__ == "__main__":
    main()
