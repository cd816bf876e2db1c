"""The model's own speed in this process, with whichever llama.cpp build is importable: time to
the first token (prompt evaluation) and time between tokens, on the demo's real prompts (the
system prompt, two retrieved passages, a caller's question), each prompt fresh (no prefix
reuse). It also prints the build's CPU features as llama.cpp reports them, so that two builds
(the portable one `make` installs, a native one put first on PYTHONPATH) or two models
(`--model`) can be compared in the same session.

    .venv/bin/python bench/model_speed.py [--model PATH.gguf] [--rounds 3]
    PYTHONPATH=/path/to/other/build .venv/bin/python bench/model_speed.py
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# bench/quick_responses.py shares its name with the package: keep this folder off the path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import llama_cpp

from voice_agent.llm.llama_model import LlamaModel
from voice_agent.llm.local import bundled_model_path
from voice_agent.llm.prompt import build_messages
from voice_agent.rag.documents import load_documents
from voice_agent.rag.encoder import Encoder, load_sentence_model
from voice_agent.rag.knowledge_base import KnowledgeBase
from voice_agent.settings import DEMO_KB_PATH, load_settings
from voice_agent.types import Message

sys.path.insert(0, str(Path(__file__).resolve().parent))
from answer_grounding import QUESTIONS


def quantiles(values: list[float]) -> str:
    cuts = statistics.quantiles(values, n=20, method="inclusive")
    return f"{statistics.median(values):.1f} | {cuts[18]:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="a GGUF file (default: the bundled one)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=40, help="tokens generated per prompt")
    args = parser.parse_args()
    settings = load_settings()
    encoder = Encoder(load_sentence_model())
    kb = KnowledgeBase(encoder, top_k=5)
    kb.load(load_documents(DEMO_KB_PATH))
    prompts = []
    for question, _ in QUESTIONS:
        passages = asyncio.run(kb.retrieve(question))[: settings.prompt_passages]
        prompts.append(
            build_messages(
                business=settings.business_name,
                task=None,
                history=[],
                passages=passages,
                question=question,
                history_turns=settings.history_turns,
            )
        )
    model_path = args.model or bundled_model_path()
    model = LlamaModel(model_path, n_threads=settings.llm_threads, n_ctx=2048)
    model.warm()
    features = llama_cpp.llama_print_system_info().decode()
    print(
        f"# model_speed: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, "
        f"{model_path.name}, llama_cpp from {Path(llama_cpp.__file__).parent}\n"
        f"# llama.cpp: {features.strip()}"
    )
    first: list[float] = []
    gaps: list[float] = []
    for _ in range(args.rounds):
        for messages in prompts:
            # A prompt with nothing in common first: each timed prompt is evaluated in full.
            for _ in model.generate([Message("user", "Hello")], 1):
                pass
            last = time.perf_counter()
            seen = 0
            for _ in model.generate(messages, args.tokens):
                now = time.perf_counter()
                (first if seen == 0 else gaps).append((now - last) * 1000)
                last, seen = now, seen + 1
    print("\n| measure (ms) | n | p50 | p95 |\n|---|---|---|---|")
    print(f"| first token (prompt of {len(prompts)} demo questions) | {len(first)} | "
          f"{quantiles(first)} |")  # fmt: skip
    print(f"| between two tokens | {len(gaps)} | {quantiles(gaps)} |")


if __name__ == "__main__":
    main()
