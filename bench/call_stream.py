"""Simulated calls to a business the fast tiers were never tuned for: enabled mode against
disabled mode on the same calls, in one run.

For each CLINC150 domain held out from all tuning (`bench/clinc_split.py`) the bench builds a
knowledge base of one page per intent (from the held-out `train` split, which no tuning reads)
and a stream of calls from the held-out `test` split: small talk around the questions (a
greeting, thanks, a request to repeat, goodbye), questions whose intent earlier callers already
asked, in their own words, questions about close topics of the same domain (CLINC's banking
intents are one purpose apart), and a question carrying the caller's own data (the name given in
`call.start`'s metadata). The LLM is a stand-in with a fixed time to first token that answers
each question from its intent's page, so a served answer's intent can be checked: a template
is right only for the small talk it maps to (`clinc_split.PACK_INTENTS`), a cache hit
only when the answer stored is for the question's intent.

Two services, one per mode, share the encoder and the stand-in; the calls alternate between
them, the same call to each in turn, over the real WebSocket. The cache starts empty for each
domain. The first-token budget is out of reach, so the first word of an LLM turn is the
stand-in's first token, not a filler.

A business that has taken calls before warms its cache from them: with `--warm-per-intent N`
(default 10; 0 for a business's first day), before each domain's calls the enabled service
answers N logged questions per intent through the knowledge tier alone, as `voice-agent warm`
does (the held-out `train` split, none of them on the knowledge base's pages), and stores the
answers as warm entries. Those stand-in calls are counted apart from the run's.

    .venv/bin/python bench/call_stream.py [--calls 12] [--first-token-ms 700] [--warm-per-intent 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import tempfile
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# bench/quick_responses.py shares its name with the package: keep this folder off the path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import websockets

from voice_agent.cache.warming import answering_scopes, generate, warm_answer
from voice_agent.rag.encoder import Encoder, load_sentence_model
from voice_agent.server import admin
from voice_agent.server.app import create_app
from voice_agent.server.build import build_service
from voice_agent.server.service import Service
from voice_agent.settings import load_settings
from voice_agent.types import Message

sys.path.append(str(Path(__file__).resolve().parent))
import clinc_split
from turn_latency import Server, timed_turn

# The small talk a call is made of, with the pack intents that answer it.
SMALL_TALK = {
    label: clinc_split.PACK_INTENTS[label]
    for label in ("greeting", "thank_you", "repeat", "goodbye")
}
NAMES = ("Dana", "Priya", "Marcus", "Elena", "Tomas", "Aiko", "Femi", "Grace")


def intent_words(intent: str) -> str:
    return intent.replace("_", " ")


ANSWERS: dict[str, str] = {}  # intent -> the page's answer, set from the knowledge base


def answer_for(intent: str) -> str:
    return ANSWERS.get(intent, f"About {intent_words(intent)}: I can help with that.")


@dataclass
class IntentLLM:
    """Answers from the intent of the question it finds in the prompt, after a set wait."""

    intent_of: dict[str, str]
    first_token_s: float
    token_interval_s: float = 0.02
    name: str = "intent stand-in"
    calls: int = 0

    async def stream(
        self, messages: Sequence[Message], max_tokens: int
    ) -> AsyncGenerator[str, None]:
        self.calls += 1
        prompt = messages[-1].content.lower()
        found = [q for q in self.intent_of if q in prompt]
        intent = self.intent_of[max(found, key=len)] if found else "oos"
        await asyncio.sleep(self.first_token_s)
        for index, word in enumerate(answer_for(intent).split(" ")):
            if index:
                await asyncio.sleep(self.token_interval_s)
            yield word + " "


@dataclass(frozen=True, slots=True)
class Turn:
    text: str
    label: str  # CLINC intent
    kind: str  # small talk, question, own data


@dataclass
class Tally:
    first_ms: list[float] = field(default_factory=list)
    sources: dict[str, int] = field(default_factory=dict)
    wrong: list[str] = field(default_factory=list)
    other_small_talk: list[str] = field(default_factory=list)
    repeats: int = 0
    cache_hits_on_repeats: int = 0
    questions: int = 0
    cache_hits: int = 0
    stored: int = 0
    warmed: int = 0
    warm_llm_calls: int = 0


PAGE_QUESTIONS = 6  # real requests quoted on each intent's page


def by_intent(rows: list[tuple[str, str]]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for text, intent in rows:
        grouped.setdefault(intent, []).append(text)
    return grouped


def knowledge_base(folder: Path, domain_rows: list[tuple[str, str]]) -> None:
    for intent, texts in by_intent(domain_rows).items():
        # Each intent's answer names the intent and one real request for it, so that answers
        # of close intents are not worded alike enough to join one answer group.
        ANSWERS[intent] = f"About {intent_words(intent)}, as in {texts[0]!r}: see our page."
        body = " ".join(f"Callers ask: {t}." for t in texts[:PAGE_QUESTIONS])
        (folder / f"{intent}.md").write_text(
            f"# {intent_words(intent).title()}\n\n{answer_for(intent)} {body}\n"
        )


def calls_for(
    questions: list[tuple[str, str]],
    small_talk: dict[str, list[str]],
    count: int,
    rng: random.Random,
) -> list[list[Turn]]:
    """`count` calls: greeting, two questions, thanks or a repeat, a question with the
    caller's name, goodbye. Questions are drawn without replacement, so an intent recurs in
    new words."""
    pool = questions[:]
    rng.shuffle(pool)
    calls = []
    for n in range(count):
        name = NAMES[n % len(NAMES)]
        asked = [pool.pop() for _ in range(3)]
        middle = rng.choice(("thank_you", "repeat"))
        calls.append(
            [
                Turn(rng.choice(small_talk["greeting"]), "greeting", "small talk"),
                Turn(asked[0][0], asked[0][1], "question"),
                Turn(asked[1][0], asked[1][1], "question"),
                Turn(rng.choice(small_talk[middle]), middle, "small talk"),
                Turn(f"this is {name}, {asked[2][0]}", asked[2][1], "own data"),
                Turn(rng.choice(small_talk["goodbye"]), "goodbye", "small talk"),
            ]
        )
    return calls


def judge(turn: Turn, frame: dict[str, Any]) -> tuple[str, str] | None:
    """("wrong", why) for a fast tier's answer to another request, ("other small talk", why)
    for small talk answered by another small-talk template ("great talk, thanks", CLINC's
    `goodbye`, as thanks), or None."""
    source, detail = frame.get("source"), frame.get("detail") or {}
    if source == "quick":
        intent = detail.get("quick", {}).get("intent")
        if intent not in SMALL_TALK.get(turn.label, set()):
            kind = "other small talk" if turn.kind == "small talk" else "wrong"
            return kind, f"template {intent} for {turn.label}: {turn.text!r}"
    if source == "cache" and frame["text"].strip() != answer_for(turn.label):
        return "wrong", f"cache served {frame['text']!r} for {turn.label}: {turn.text!r}"
    return None


async def run_call(
    url: str,
    call_id: str,
    name: str,
    turns: list[Turn],
    tally: Tally,
    seen: set[str],
    pause_s: float,
) -> None:
    async with websockets.connect(url) as ws:
        await ws.send(
            json.dumps(
                {
                    "type": "call.start",
                    "call_id": call_id,
                    "flow": "qa",
                    "metadata": {"caller_name": name},
                }
            )
        )
        while json.loads(await ws.recv())["type"] != "call.ready":
            pass
        for turn in turns:
            await asyncio.sleep(pause_s)
            first_ms, _, frame = await timed_turn(ws, turn.text)
            tally.first_ms.append(first_ms)
            source = frame.get("source", "?")
            tally.sources[source] = tally.sources.get(source, 0) + 1
            if turn.kind != "small talk":
                tally.questions += 1
                tally.cache_hits += source == "cache"
                if turn.label in seen:
                    tally.repeats += 1
                    tally.cache_hits_on_repeats += source == "cache"
                seen.add(turn.label)
            tally.stored += bool((frame.get("detail") or {}).get("cache_stored"))
            verdict = judge(turn, frame)
            if verdict is not None:
                kind, why = verdict
                (tally.wrong if kind == "wrong" else tally.other_small_talk).append(why)


def flush(service: Service) -> None:
    if service.cache is not None:
        service.cache.cache.flush()


async def warm(service: Service, questions: list[str]) -> int:
    """Answer logged questions through the knowledge tier alone and store them, as
    `voice-agent warm` and `VOICE_AGENT_CACHE_WARM_FILE` do."""
    flow = service.flows.get("qa")
    assert flow is not None
    state = answering_scopes([flow], "", service.settings.language)[0].state
    answers = [
        ready
        async for question, reply in generate(
            service.responder, service.encoder.embed, questions, flow.name, state
        )
        if (ready := warm_answer(question, reply, flow.name, state)) is not None
    ]
    return await admin.warm_cache(service, answers)


async def drive(
    urls: dict[str, str],
    services: dict[str, Service],
    domains: dict[str, list[list[Turn]]],
    logged: dict[str, list[str]],
    llm: IntentLLM,
    pause_s: float,
) -> dict[str, Tally]:
    tallies = {mode: Tally() for mode in urls}
    for domain, calls in domains.items():
        for service in services.values():
            flush(service)
        if logged[domain]:
            before = llm.calls
            tallies["enabled"].warmed += await warm(services["enabled"], logged[domain])
            tallies["enabled"].warm_llm_calls += llm.calls - before
        seen: dict[str, set[str]] = {mode: set() for mode in urls}
        for n, turns in enumerate(calls):
            name = NAMES[n % len(NAMES)]
            for mode, url in urls.items():
                await run_call(
                    url, f"{domain}-{n}-{mode}", name, turns, tallies[mode], seen[mode], pause_s
                )
    return tallies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=12, help="calls per held-out domain")
    parser.add_argument("--first-token-ms", type=float, default=700.0)
    parser.add_argument("--pause-s", type=float, default=0.2, help="caller's pause per turn")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument(
        "--warm-per-intent",
        type=int,
        default=10,
        help="logged questions per intent warmed into the cache before each domain's calls",
    )
    args = parser.parse_args()
    rng = random.Random(args.seed)
    domains_of = clinc_split.domain_of_intent()
    test = clinc_split.rows("held_out", "test")
    train = clinc_split.rows("held_out", "train")
    small_talk: dict[str, list[str]] = {}
    for text, label in test:
        if label in SMALL_TALK:
            small_talk.setdefault(label, []).append(text)
    # The logged questions: each intent's held-out `train` requests after those on its page.
    logged = {
        domain: [
            text
            for intent, texts in by_intent(train).items()
            if domains_of.get(intent) == domain
            for text in texts[PAGE_QUESTIONS : PAGE_QUESTIONS + args.warm_per_intent]
        ]
        for domain in clinc_split.HELD_OUT_DOMAINS
    }
    # Small talk that reaches the LLM is answered as its own intent too.
    intent_of = {
        t.lower(): i
        for t, i in test
        if domains_of.get(i) in clinc_split.HELD_OUT_DOMAINS or i in SMALL_TALK
    }
    warm_texts = {text for texts in logged.values() for text in texts}
    intent_of.update((t.lower(), i) for t, i in train if t in warm_texts)
    llm = IntentLLM(intent_of, args.first_token_ms / 1000)
    encoder = Encoder(load_sentence_model(), cache_size=0)
    streams: dict[str, list[list[Turn]]] = {}
    with tempfile.TemporaryDirectory() as kb:
        for domain in clinc_split.HELD_OUT_DOMAINS:
            rows = [(t, i) for t, i in train if domains_of.get(i) == domain]
            knowledge_base(Path(kb), rows)
            questions = [(t, i) for t, i in test if domains_of.get(i) == domain]
            streams[domain] = calls_for(questions, small_talk, args.calls, rng)
        services = {
            mode: build_service(
                load_settings(
                    VOICE_AGENT_SPEECH="off",  # text turns only: no speech engines
                    LATENCY_OPTIMIZATION_MODE=mode,
                    VOICE_AGENT_KB_PATH=kb,
                    VOICE_AGENT_DEFAULT_FLOW="qa",
                    VOICE_AGENT_FIRST_TOKEN_BUDGET_S=10,
                    VOICE_AGENT_LLM_TIMEOUT_S=30,
                ),
                encoder=encoder,
                llm=llm,
            )
            for mode in ("disabled", "enabled")
        }
        print(
            f"# call_stream: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, "
            f"encoder {encoder.runtime} {encoder.precision}; held-out domains "
            f"{', '.join(clinc_split.HELD_OUT_DOMAINS)}, {args.calls} calls each, 6 turns a "
            f"call; LLM stand-in {args.first_token_ms:.0f} ms to first token; seed {args.seed}; "
            f"{args.warm_per_intent} logged questions per intent warmed"
        )
        with (
            Server(create_app(service=services["disabled"])) as off,
            Server(create_app(service=services["enabled"])) as on,
        ):
            calls_before = llm.calls
            tallies = asyncio.run(
                drive(
                    {"disabled": off, "enabled": on}, services, streams, logged, llm, args.pause_s
                )
            )
    report(tallies, llm.calls - calls_before - tallies["enabled"].warm_llm_calls)


def report(tallies: dict[str, Tally], run_calls: int) -> None:
    print("\n| mode | turns | first word mean (ms) | p50 | p95 | LLM calls | sources |")
    print("|---|---|---|---|---|---|---|")
    for mode, tally in tallies.items():
        values = sorted(tally.first_ms)
        llm_turns = tally.sources.get("llm", 0)
        print(
            f"| {mode} | {len(values)} | {statistics.fmean(values):.1f} | "
            f"{statistics.median(values):.1f} | {values[int(0.95 * len(values))]:.1f} | "
            f"{llm_turns} | {json.dumps(tally.sources, sort_keys=True)} |"
        )
    on, off = tallies["enabled"], tallies["disabled"]
    ratio = statistics.fmean(on.first_ms) / statistics.fmean(off.first_ms)
    llm_ratio = on.sources.get("llm", 0) / max(off.sources.get("llm", 0), 1)
    print(
        f"\nenabled / disabled: first word {ratio:.2f}x (target <= 0.35), LLM calls "
        f"{llm_ratio:.2f}x (target <= 0.5)"
    )
    print(
        f"cache hits on questions whose intent an earlier caller asked: "
        f"{on.cache_hits_on_repeats}/{on.repeats}; on all questions: "
        f"{on.cache_hits}/{on.questions}; answers stored: {on.stored}; warmed before the calls: "
        f"{on.warmed} ({on.warm_llm_calls} stand-in calls, offline)"
    )
    print(f"wrong answers from a fast tier (enabled): {len(on.wrong)} (target 0)")
    for reason in on.wrong:
        print(f"- {reason}")
    print(f"small talk answered by another small-talk template: {len(on.other_small_talk)}")
    for reason in on.other_small_talk:
        print(f"- {reason}")
    print(f"(LLM stand-in calls in the run: {run_calls})")


if __name__ == "__main__":
    main()
