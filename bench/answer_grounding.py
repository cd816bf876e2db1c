"""How often the bundled model's spoken answer contains the fact the caller asked for, by how
many retrieved passages go into the prompt, and whether the quality score tells those answers
from the ones without the fact. Each question has a pattern that a right answer must contain
(an hour, a price, a street number); the answer is what the service would speak (speech
filter, sentence limit). Repeated runs average out sampling. Every answer is then scored as the
quality tracker scores it (with the passages it was made from), and the ROC AUC of the score
and of its parts says how well each separates answers with the fact from answers without.

    .venv/bin/python bench/answer_grounding.py [--repeats 3] [--model PATH.gguf]

`--model` measures another GGUF the same way (default: the bundled SmolLM2-135M); the first
word and answer times are the model's own, in this process.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# bench/quick_responses.py shares its name with the package: keep this folder off the path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from voice_agent.llm.llama_model import LlamaModel
from voice_agent.llm.local import bundled_model_path
from voice_agent.llm.prompt import build_messages
from voice_agent.llm.speech import SpeechFilter
from voice_agent.quality.score import QualityScore
from voice_agent.rag.documents import load_documents
from voice_agent.rag.encoder import Encoder, load_sentence_model
from voice_agent.rag.knowledge_base import KnowledgeBase
from voice_agent.settings import DEMO_KB_PATH, load_settings
from voice_agent.telemetry.quality import score_texts

sys.path.insert(0, str(Path(__file__).resolve().parent))
from quality_score import roc_auc

QUESTIONS: list[tuple[str, str]] = [
    ("What time do you open on Saturday?", r"\b9\b"),
    ("What time do you close on Saturday?", r"\b6\b"),
    ("Where are you located?", r"418"),
    # Yes-or-no facts: the answer must not deny them ("We don't sell pet medications").
    ("Do you deliver prescriptions?", r"^(?!.*\b(not|don't|no)\b).*(\byes\b|5 miles|free)"),
    ("How much is a flu shot without insurance?", r"39\.99"),
    ("What is your phone number?", r"555.?010.?0140"),
    ("Where do I park?", r"birch|behind"),
    ("Are you open on Christmas?", r"closed|not open"),
    ("How much is the savings club?", r"\$?20\b"),
    ("Can I return over-the-counter items?", r"30 days|receipt"),
    ("How long does a refill take?", r"4 hours|four hours"),
    ("Do you sell pet medications?", r"^(?!.*\b(not|don't|no)\b).*\b(yes|fill|sell|carry)"),
    ("How much does delivery cost beyond 5 miles?", r"5\.99"),
    ("What languages do you speak?", r"spanish|vietnamese"),
]


# Text a caller must never hear: the model writing the next turn of the prompt itself.
PROMPT_ECHO = re.compile(
    r"\b(question|answer|user|assistant|caller|facts?)\s*:|\[/?inst\]|<<", re.IGNORECASE
)


def spoken_answer(
    llm: LlamaModel,
    messages: list,  # type: ignore[type-arg]
    max_tokens: int,
    sentences: int,
) -> tuple[str, float]:
    """What the service would speak, and the milliseconds to its first spoken word."""
    speech = SpeechFilter(sentences)
    out = []
    started = time.perf_counter()
    first_word_ms = float("nan")
    pieces = llm.generate(messages, max_tokens)
    for token in pieces:
        out.append(speech.feed(token))
        if first_word_ms != first_word_ms and "".join(out).strip():
            first_word_ms = (time.perf_counter() - started) * 1000
        if speech.done:
            break
    pieces.close()
    out.append(speech.flush())
    return "".join(out), first_word_ms


def p50_p95(values: list[float]) -> str:
    if len(values) < 2:
        return "-"
    cuts = statistics.quantiles(values, n=20, method="inclusive")
    return f"{statistics.median(values):.0f} / {cuts[18]:.0f}"


def report_scores(encoder: Encoder, scored: list[tuple[str, str, list[str], bool]]) -> None:
    """The quality score of every answer, split by whether it holds the fact."""

    results = [
        (asyncio.run(score_texts(encoder.encode_many, q, a, passages)), has_fact, q, a)
        for q, a, passages, has_fact in scored
        if a.strip()
    ]
    right = [r for r, ok, _, _ in results if ok]
    wrong = [r for r, ok, _, _ in results if not ok]
    print(f"\nquality score of the {len(results)} answers: {len(right)} with the fact, "
          f"{len(wrong)} without")  # fmt: skip
    print("\n| measure | ROC AUC | with the fact: p50 | without: p50 |\n|---|---|---|---|")
    for part in ("score", "relevance", "grounding", "consistency", "speech"):

        def value(r: QualityScore, part: str = part) -> float:
            return r.score if part == "score" else r.parts[part]

        with_fact = [value(r) for r in right]
        without = [value(r) for r in wrong]
        print(
            f"| {part} | {roc_auc(with_fact, without):.3f} | "
            f"{statistics.median(with_fact):.3f} | {statistics.median(without):.3f} |"
        )
    flagged = [sum(r.parts["consistency"] == 0 for r in group) for group in (right, wrong)]
    print(f"\ninconsistent: {flagged[0]} of {len(right)} with the fact, {flagged[1]} of "
          f"{len(wrong)} without")  # fmt: skip
    print("\nhighest-scored answers without the fact:")
    misses = sorted((item for item in results if not item[1]), key=lambda item: -item[0].score)
    for result, _, question, answer in misses[:5]:
        print(f"  {result.score:5.1f} {question!r} -> {answer!r}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--model", type=Path, help="a GGUF file (default: the bundled one)")
    args = parser.parse_args()
    settings = load_settings()
    encoder = Encoder(load_sentence_model())
    kb = KnowledgeBase(encoder, top_k=5)
    kb.load(load_documents(DEMO_KB_PATH))
    model_path = args.model or bundled_model_path()
    llm = LlamaModel(model_path, n_threads=settings.llm_threads, n_ctx=2048)
    llm.warm()
    retrieved = {q: asyncio.run(kb.retrieve(q)) for q, _ in QUESTIONS}
    print(
        f"# answer_grounding: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, "
        f"{model_path.name}, {len(QUESTIONS)} questions x {args.repeats} runs, "
        f"{settings.answer_max_sentences} sentences at most"
    )
    scored: list[tuple[str, str, list[str], bool]] = []
    print(
        "\n| passages in prompt | answers with the fact | per run | first word p50 / p95 (ms) "
        "| answer time p50 / p95 (ms) |"
    )
    print("|---|---|---|---|---|")
    for passages in (1, 2, 3):
        hits: list[int] = []
        times: list[float] = []
        first_words: list[float] = []
        for _ in range(args.repeats):
            run_hits = 0
            for question, pattern in QUESTIONS:
                used = retrieved[question][:passages]
                messages = build_messages(
                    business=settings.business_name, task=None, history=[],
                    passages=retrieved[question][:passages], question=question,
                    history_turns=settings.history_turns,
                )  # fmt: skip
                started = time.perf_counter()
                answer, first_word_ms = spoken_answer(
                    llm, messages, settings.llm_max_tokens, settings.answer_max_sentences
                )
                times.append((time.perf_counter() - started) * 1000)
                if first_word_ms == first_word_ms:  # not NaN: something was said
                    first_words.append(first_word_ms)
                has_fact = bool(re.search(pattern, answer, re.IGNORECASE))
                run_hits += has_fact
                scored.append((question, answer, [p.text for p in used], has_fact))
            hits.append(run_hits)
        total = len(QUESTIONS) * args.repeats
        print(
            f"| {passages} | {sum(hits)}/{total} ({sum(hits) / total:.0%}) | "
            f"{', '.join(map(str, hits))} | {p50_p95(first_words)} | {p50_p95(times)} |"
        )
    echoes = [a for _, a, _, _ in scored if PROMPT_ECHO.search(a)]
    print(
        f"\nanswers that speak prompt text (Question:, Answer:, [INST], ...): "
        f"{len(echoes)} of {len(scored)}" + (f", e.g. {echoes[0]!r}" if echoes else "")
    )
    report_scores(encoder, scored)


if __name__ == "__main__":
    main()
