"""Run as `python -m tests.rag.decisions_probe OUT.json`: start the encoder, the quick responder
and a response cache warmed with the demo FAQ the way the service does (its settings from the
environment), then write the quick and cache decisions on a few hundred utterances that are not
exact matches (the pack's examples reworded, the FAQ's paraphrases, the knowledge base's own
sentences), from vectors encoded in three batchings. tests/rag/test_decisions.py compares them,
and two starts."""

from __future__ import annotations

import json
import random
import re
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import yaml

from voice_agent.cache.store import CacheHit, CacheScope, ResponseCache
from voice_agent.cache.warming import faq_pairs
from voice_agent.rag.documents import load_documents
from voice_agent.server.build import (
    build_cache_tier,
    build_encoder,
    build_knowledge,
    build_quick_tier,
)
from voice_agent.settings import DEMO_KB_PATH, load_settings
from voice_agent.tiers.quick import QuickTier

PARAPHRASES = Path(__file__).resolve().parents[2] / "bench" / "data" / "faq_paraphrases.yaml"
SCOPE = CacheScope(flow="probe", state="answer", kb_version="probe", language="en")


def utterances(pack_examples: list[str], documents_text: list[str]) -> list[str]:
    reworded = [f"{text} please" for text in pack_examples[::3]]
    reworded += [f"hey so {text}" for text in pack_examples[1::3]]
    paraphrases = [p for ps in yaml.safe_load(PARAPHRASES.read_text()).values() for p in ps]
    sentences = [s for text in documents_text for s in re.split(r"(?<=[.?!])\s+", text)]
    return reworded + paraphrases + [s for s in sentences if 4 <= len(s.split()) <= 25][:150]


def main(out: Path) -> None:
    # No embedding cache: every batching below computes its vectors afresh.
    settings = load_settings(VOICE_AGENT_EMBEDDING_CACHE_SIZE=0)
    encoder = build_encoder(settings)
    quick = build_quick_tier(settings, encoder)
    cache_tier = build_cache_tier(settings, encoder, build_knowledge(settings, encoder))
    assert quick is not None and cache_tier is not None
    documents = load_documents(DEMO_KB_PATH)
    cache = cache_tier.cache
    pairs = faq_pairs(documents)
    vectors = encoder.encode_sync([p.question for p in pairs])
    for pair, vector in zip(pairs, vectors, strict=True):
        cache.store(pair.question, vector, pair.answer, SCOPE, origin="warm")
    examples = [e for i in quick.responder.pack.intents.values() for e in i.examples]
    texts = utterances(examples, [d.text for d in documents])
    runs = {}
    # The service batches the calls' sentences that meet on the encoder, so which sentences
    # share a batch depends on timing: decide on each text's vector from batches of 32, one
    # at a time, and shuffled batches of 7.
    for name, vectors in (
        ("batched", encoder.encode_sync(texts)),
        ("one by one", np.vstack([encoder.encode_sync([t]) for t in texts])),
        ("shuffled", shuffled_batches(encoder.encode_sync, texts, 7)),
    ):
        runs[name] = [
            decided(quick, cache, text, v) for text, v in zip(texts, vectors, strict=True)
        ]
    out.write_text(json.dumps({"runtime": encoder.runtime, "runs": runs}))


def shuffled_batches(
    encode: Callable[[list[str]], np.ndarray], texts: list[str], size: int
) -> np.ndarray:
    order = list(range(len(texts)))
    random.Random(17).shuffle(order)
    vectors: list[np.ndarray] = [np.empty(0)] * len(texts)
    for start in range(0, len(order), size):
        picked = order[start : start + size]
        for i, vector in zip(picked, encode([texts[i] for i in picked]), strict=True):
            vectors[i] = vector
    return np.vstack(vectors)


def decided(quick: QuickTier, cache: ResponseCache, text: str, vector: np.ndarray) -> dict:
    decision = quick.responder.decide(text, vector)
    looked = cache.lookup_semantic(text, vector, SCOPE)
    return {
        "text": text,
        "quick": [decision.intent, decision.answer, decision.kind, decision.guard],
        "quick_score": decision.score,
        "cache": looked.entry.question if isinstance(looked, CacheHit) else None,
    }


if __name__ == "__main__":
    main(Path(sys.argv[1]))
