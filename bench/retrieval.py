"""Retrieval quality and speed on the demo knowledge base: paraphrased caller questions, each
with the documents that answer it, scored at top 1 and within the top 3 (what reaches the
prompt). BM25 alone and dense alone are measured in the same run, against the fused ranking.

    .venv/bin/python bench/retrieval.py
    .venv/bin/python bench/retrieval.py --adapter   # with the encoder's adapter (tune_encoder.py)
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# bench/quick_responses.py shares its name with the package: keep this folder off the path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from voice_agent.rag.documents import load_documents
from voice_agent.rag.encoder import Encoder, bundled_adapter_path, load_sentence_model
from voice_agent.rag.fusion import reciprocal_rank_fusion
from voice_agent.rag.knowledge_base import KnowledgeBase
from voice_agent.settings import DEMO_KB_PATH

# Questions worded as a caller would, not as the documents are; "faq" also answers many.
QUESTIONS: list[tuple[str, set[str]]] = [
    ("What time do you close on Sunday?", {"hours"}),
    ("Where is the pharmacy?", {"location", "contact"}),
    ("How much is a flu shot without insurance?", {"prices", "vaccines"}),
    ("Can you deliver my medicine to my house?", {"delivery"}),
    ("Do you take Medicare part D?", {"medicare-part-d", "insurance"}),
    ("How do I move my prescription from another pharmacy?", {"transfers"}),
    ("Can I get something for my dog?", {"pet-medications"}),
    ("Where can I throw away old pills?", {"disposal"}),
    ("Is there somewhere to leave my car?", {"parking"}),
    ("Can my wife collect my pills for me?", {"pickup-by-others"}),
    ("I lost my medication, what do I do?", {"emergency-supply"}),
    ("Do you rent wheelchairs?", {"medical-equipment"}),
    ("Does anyone there speak Spanish?", {"languages"}),
    ("Can I pay with my HSA card?", {"payment"}),
    ("Are you hiring?", {"careers"}),
    ("Can I talk to the manager?", {"contact"}),
    ("Do you make custom medications?", {"compounding"}),
    ("Can I check my blood pressure there?", {"blood-pressure"}),
    ("Will you text me when my order is ready?", {"text-alerts"}),
    ("Can I return cough syrup I bought?", {"returns"}),
    ("Do you have a discount program?", {"savings-club"}),
    ("Can you refill my prescription automatically?", {"auto-refill"}),
    ("Do you have a drive through?", {"drive-thru"}),
    ("Is my information kept private?", {"privacy"}),
    ("Can I get a shingles vaccine?", {"vaccines"}),
    ("Will you switch my brand medicine to a generic?", {"generic-substitution"}),
]


def main() -> None:
    adapter = bundled_adapter_path() if "--adapter" in sys.argv[1:] else None
    encoder = Encoder(load_sentence_model(adapter=adapter), cache_size=0)
    kb = KnowledgeBase(encoder, top_k=5)
    index = kb.load(load_documents(DEMO_KB_PATH))
    print(
        f"# retrieval: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, "
        f"{kb.document_count} documents, {len(index.chunks)} chunks, "
        f"encoder {encoder.precision}{' with the adapter' if adapter else ''}, "
        f"{len(QUESTIONS)} questions"
    )
    scores = {name: [0, 0] for name in ("bm25", "dense", "fused (RRF k=60)")}
    search_ms: list[float] = []
    for question, documents in QUESTIONS:
        good = documents | {"faq"}
        vector = encoder.encode_sync([question])[0]
        started = time.perf_counter()
        bm25 = index.bm25_ranking(question)
        dense = index.dense_ranking(vector)
        fused = [i for i, _ in reciprocal_rank_fusion([bm25, dense], top=5)]
        search_ms.append((time.perf_counter() - started) * 1000)
        for name, ranking in (("bm25", bm25), ("dense", dense), ("fused (RRF k=60)", fused)):
            ids = [index.chunks[i].doc_id for i in ranking]
            scores[name][0] += bool(ids) and ids[0] in good
            scores[name][1] += bool(set(ids[:3]) & good)
    total = len(QUESTIONS)
    print("\n| ranking | top-1 | top-3 (reaches the prompt) |\n|---|---|---|")
    for name, (top1, top3) in scores.items():
        top1_share, top3_share = f"{top1 / total:.0%}", f"{top3 / total:.0%}"
        print(f"| {name} | {top1}/{total} ({top1_share}) | {top3}/{total} ({top3_share}) |")
    search_ms.sort()
    print(
        f"\nscoring and fusion per question: p50 {statistics.median(search_ms):.2f} ms, "
        f"max {search_ms[-1]:.2f} ms (embedding excluded; see turn_latency.py)"
    )


if __name__ == "__main__":
    main()
