"""Does the quality score catch an answer that the passages deny? The demo knowledge base's FAQ
pairs (voice_agent/data/demo_kb/faq.md) give a question and its right answer; each answer is
then made wrong on purpose, by rules written before any score was seen:

- **negated**: the answer's claim turned around ("accepts" to "does not accept", "is open" to
  "is not open", "No." to "Yes." with the negation dropped);
- **number**: every number in the answer moved by one ("9 AM" to "10 AM", "$5.99" to "$6.99");
- **denied in other words**: written denials that share few words with the passage, the
  issue's own example among them ("No, you cannot pay with a credit card...").

Every answer is scored as the quality tracker scores it, with the passages retrieved for its
question (`VOICE_AGENT_PROMPT_PASSAGES` of them), and the bench prints the ROC AUC of right
against each kind of wrong, and the share of each below the cache's quality gate
(`VOICE_AGENT_CACHE_MIN_QUALITY`): a wrong answer above the gate could be stored and served
again to every caller who asks.

    .venv/bin/python bench/denied_claims.py
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
from datetime import UTC, datetime
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# bench/quick_responses.py shares its name with the package: keep this folder off the path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from voice_agent.rag.documents import load_documents
from voice_agent.rag.encoder import Encoder, load_sentence_model, single_threaded_blas
from voice_agent.rag.knowledge_base import KnowledgeBase
from voice_agent.settings import DEMO_KB_PATH, load_settings
from voice_agent.telemetry.quality import score_texts

sys.path.insert(0, str(Path(__file__).resolve().parent))
from quality_score import roc_auc

# (question, a denial in words of its own) for facts the demo knowledge base states.
DENIALS: list[tuple[str, str]] = [
    (
        "Can I pay with a credit card?",
        "No, you cannot pay with a credit card. You need to use your local bank's ATM for payment.",
    ),
    ("Do you deliver prescriptions?", "Sorry, we have no delivery service of any kind."),
    ("Are you open on Sunday?", "No, we stay shut all day on Sundays."),
    ("Do you give flu shots?", "We don't offer vaccinations here, please see your doctor."),
    ("Can someone else pick up my prescription?", "No, only the patient may collect it."),
    ("Do you take Medicare Part D?", "Unfortunately Medicare plans are not taken here."),
    ("Can I get text alerts?", "We can't send text messages about prescriptions."),
    ("Is parking free?", "No, parking costs money near the pharmacy."),
]

# Rewrites that turn a claim around, tried in order; the first that applies is used.
_TURN_AROUND: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^No\. "), "Yes. "),
    (re.compile(r"^Yes\. "), "No. "),
    (re.compile(r"\b(is|are|can|will|does|do) not\b"), r"\1"),
    (re.compile(r"\b(cannot)\b"), "can"),
    (re.compile(r"\b(is|are|can|will)\b"), r"\1 not"),
    (re.compile(r"\b(accepts|offers|delivers|carries|sells|takes|opens|closes|costs)\b"), "~"),
]
_NUMBER = re.compile(r"\d+(?:\.\d+)?")


def faq_pairs(path: Path) -> list[tuple[str, str]]:
    text = (path / "faq.md").read_text()
    return re.findall(r"^Q: (.+)\nA: (.+)$", text, flags=re.MULTILINE)


def turned_around(answer: str) -> str | None:
    for pattern, replacement in _TURN_AROUND:
        if not pattern.search(answer):
            continue
        if replacement == "~":  # "accepts" -> "does not accept"
            return pattern.sub(lambda m: f"does not {m.group(1)[:-1]}", answer, count=1)
        out = pattern.sub(replacement, answer, count=1)
        if pattern.pattern.startswith("^"):  # "No. ... closed" -> "Yes. ... open" is not
            out = re.sub(
                r"\b(not|closed)\b ?", lambda m: "open " if m.group(1) == "closed" else "", out
            )
        return out
    return None


def moved_numbers(answer: str) -> str | None:
    if not _NUMBER.search(answer):
        return None

    def bump(match: re.Match[str]) -> str:
        value = match.group(0)
        if "." in value:
            whole, cents = value.split(".")
            return f"{int(whole) + 1}.{cents}"
        return str(int(value) + 1).zfill(len(value))

    return _NUMBER.sub(bump, answer)


async def main() -> None:
    settings = load_settings()
    single_threaded_blas()
    encoder = Encoder(load_sentence_model(), cache_size=0)
    knowledge = KnowledgeBase(encoder, top_k=settings.retrieval_top_k)
    knowledge.load(load_documents(DEMO_KB_PATH))
    gate = settings.cache_min_quality
    cases: dict[str, list[tuple[str, str]]] = {"right": [], "negated": [], "number": []}
    for question, answer in faq_pairs(DEMO_KB_PATH):
        cases["right"].append((question, answer))
        for kind, wrong in (("negated", turned_around(answer)), ("number", moved_numbers(answer))):
            if wrong is not None and wrong != answer:
                cases[kind].append((question, wrong))
    cases["denied in other words"] = DENIALS
    scored: dict[str, list[tuple[float, str, str]]] = {}
    flagged = dict.fromkeys(cases, 0)
    for kind, pairs in cases.items():
        scored[kind] = []
        for question, answer in pairs:
            passages = await knowledge.retrieve(question)
            texts = [p.text for p in passages[: settings.prompt_passages]]
            result = await score_texts(encoder.encode_many, question, answer, texts)
            scored[kind].append((result.score, question, answer))
            flagged[kind] += result.parts["consistency"] == 0
    print(
        f"# denied_claims: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, demo knowledge base FAQ, "
        f"{settings.prompt_passages} passages per answer, cache gate {gate:g}\n"
    )
    right = [s for s, _, _ in scored["right"]]
    print(
        "| answers | n | ROC AUC against right | seen as contradicted | below the gate |"
        "\n|---|---|---|---|---|"
    )
    below = sum(s < gate for s in right)
    print(
        f"| right | {len(right)} | - | {flagged['right']} | {below}/{len(right)} "
        "(refused though right) |"
    )
    for kind in ("negated", "number", "denied in other words"):
        values = [s for s, _, _ in scored[kind]]
        caught = sum(s < gate for s in values)
        print(
            f"| {kind} | {len(values)} | {roc_auc(right, values):.3f} | {flagged[kind]} | "
            f"{caught}/{len(values)} ({caught / len(values):.0%}) |"
        )
    everything = [
        s for kind in ("negated", "number", "denied in other words") for s, _, _ in scored[kind]
    ]
    print(
        f"\nall wrong on purpose: ROC AUC {roc_auc(right, everything):.3f}, caught at the gate "
        f"{sum(s < gate for s in everything)}/{len(everything)}"
    )
    print("\nwrong answers above the gate (could be stored):")
    for kind in ("negated", "number", "denied in other words"):
        for score, question, answer in scored[kind]:
            if score >= gate:
                print(f"- {kind}, {score:.1f}: {question!r} -> {answer!r}")


if __name__ == "__main__":
    asyncio.run(main())
