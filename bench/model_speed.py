"""The model's own speed in this process, with whichever llama.cpp build is importable: time to
the first token (prompt evaluation) and time between tokens, on the demo's real prompts (the
system prompt, two retrieved passages, a caller's question), each prompt fresh (no prefix
reuse). It also prints the build's CPU features as llama.cpp reports them, so that two builds
(the portable one `make` installs, a native one put first on PYTHONPATH) or two models
(`--model`) can be compared in the same session.

    .venv/bin/python bench/model_speed.py [--model PATH.gguf] [--rounds 3]
    PYTHONPATH=/path/to/other/build .venv/bin/python bench/model_speed.py
    .venv/bin/python bench/model_speed.py --boundary

`--boundary` also starts the model's own process (as the service does) and times every prompt
both ways, in this process and over the process boundary (a bare streaming request, as
`bench/turn_latency.py` makes), alternating which goes first: the paired difference is what
the process boundary costs the first token.
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

sys.path.insert(0, str(Path(__file__).resolve().parent))  # answer_grounding took it off again
from turn_latency import ModelAlone


def quantiles(values: list[float]) -> str:
    cuts = statistics.quantiles(values, n=20, method="inclusive")
    return f"{statistics.median(values):.1f} | {cuts[18]:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="a GGUF file (default: the bundled one)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=40, help="tokens generated per prompt")
    parser.add_argument("--boundary", action="store_true", help="also over the model process")
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

    def in_process(messages: list[Message]) -> float:
        # A prompt with nothing in common first: each timed prompt is evaluated in full.
        for _ in model.generate([Message("user", "Hello")], 1):
            pass
        last = time.perf_counter()
        seen = 0
        started = last
        for _ in model.generate(messages, args.tokens):
            now = time.perf_counter()
            (first if seen == 0 else gaps).append((now - last) * 1000)
            last, seen = now, seen + 1
        return (first[-1] if seen else time.perf_counter() - started) * 1.0

    alone = None
    if args.boundary:
        from voice_agent.llm.local import start_model_process
        from voice_agent.server.build import model_supervisor_config

        supervisor = start_model_process(model_path, model_supervisor_config(settings))
        assert supervisor.base_url is not None
        alone = ModelAlone(supervisor.base_url, model)
    paired: list[float] = []
    over: list[float] = []
    for round_ in range(args.rounds):
        for n, messages in enumerate(prompts):
            if alone is None:
                in_process(messages)
                continue
            hello = [Message("user", "Hello")]
            timings = {}
            for way in ("in", "over") if (n + round_) % 2 == 0 else ("over", "in"):
                if way == "in":
                    timings[way] = in_process(messages)
                else:
                    alone.over_boundary(hello, 1)
                    timings[way] = alone.over_boundary(messages, args.tokens)
            over.append(timings["over"])
            paired.append(timings["over"] - timings["in"])
    print("\n| measure (ms) | n | p50 | p95 |\n|---|---|---|---|")
    print(f"| first token (prompt of {len(prompts)} demo questions) | {len(first)} | "
          f"{quantiles(first)} |")  # fmt: skip
    print(f"| between two tokens | {len(gaps)} | {quantiles(gaps)} |")
    if alone is not None:
        print(f"| first token over the process boundary | {len(over)} | {quantiles(over)} |")
        print(f"| the boundary's cost (paired) | {len(paired)} | {quantiles(paired)} |")
        asyncio.run(supervisor.aclose())


if __name__ == "__main__":
    main()
