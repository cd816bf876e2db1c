"""First-token latency with and without speculative work on partial transcripts.

The service runs in `enabled` mode with the bundled models (encoder, SmolLM2-135M) on a
loopback port. Each question is asked in fresh native-protocol calls, once with the caller's
words arriving as cumulative partials (`final:false`, one more word every `--word-gap-s`, the
last one the final's own text) before the final, once with the same pause and only the final.
The clock runs from sending the final to the first `agent.delta`, client side, and the two
asks of a question are paired. The model's prefix cache would answer a prompt it has just
seen at once, so all questions are asked one way, then all the other way (reversed in odd
rounds). The embedding cache is off, as for a question never heard before, and the response
cache keeps only its warm FAQ answers (nothing new is stored), so both asks of a question
reach the same tier.

    .venv/bin/python bench/speculation.py [--rounds 2] [--word-gap-s 0.2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# bench/quick_responses.py shares its name with the package: keep this folder off the path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import websockets

sys.path.insert(0, str(Path(__file__).resolve().parent))
from turn_latency import Server, percentile, row, timed_turn

from voice_agent.server.app import create_app
from voice_agent.server.build import build_service
from voice_agent.settings import load_settings
from voice_agent.tiers.cache import CacheTier

QUESTIONS = [
    # small talk (quick responses)
    "Hi there, how are you doing today",
    "Thank you so much for your help",
    "Are you a real person or a robot",
    "Sorry can you say that again please",
    # paraphrases of the knowledge base's FAQ (warm response cache)
    "Is there somewhere I can park my car",
    "What time do you open on Saturdays",
    "Where exactly is the pharmacy located",
    "How much does a flu shot cost",
    # questions for the knowledge base and the model
    "Do you carry any medication for pets",
    "Can someone else pick up my prescription for me",
    "What languages do your pharmacists speak",
    "Where can I get rid of my old medication",
]


async def ask(
    url: str, question: str, partials: bool, word_gap_s: float, bare: bool
) -> dict[str, Any]:
    final = question + "?"
    words = (question if bare else final).split()
    async with websockets.connect(url) as ws:
        await ws.send(json.dumps({"type": "call.start"}))
        json.loads(await ws.recv())
        for n in range(1, len(words) + 1):
            await asyncio.sleep(word_gap_s)  # the caller speaking
            if partials:
                text = " ".join(words[:n])
                await ws.send(json.dumps({"type": "user.utterance", "text": text, "final": False}))
        await asyncio.sleep(word_gap_s)  # end of speech detected
        first_ms, _, frame = await timed_turn(ws, final)
        await ws.send(json.dumps({"type": "call.end"}))
    return {
        "question": question,
        "partials": partials,
        "source": frame["source"],
        "speculation": frame["detail"].get("flow", {}).get("speculation"),
        "cache": frame["detail"].get("cache"),
        "first_token_ms": first_ms,
        "server": frame["latency_ms"],
    }


async def drive(url: str, rounds: int, word_gap_s: float, bare: bool) -> list[tuple[dict, dict]]:
    """Every question with partials, then every one without (the other way round in odd
    rounds): the model's prefix cache never holds the very prompt it is about to get."""
    pairs = []
    for r in range(rounds):
        got: dict[bool, list[dict]] = {}
        for partials in (True, False) if r % 2 == 0 else (False, True):
            got[partials] = [await ask(url, q, partials, word_gap_s, bare) for q in QUESTIONS]
        pairs.extend(zip(got[True], got[False], strict=True))
    return pairs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2, help="times each question is paired")
    parser.add_argument("--word-gap-s", type=float, default=0.2, help="time between words (s)")
    parser.add_argument(
        "--bare",
        action="store_true",
        help="partials without the final's question mark: speculation never matches, which "
        "measures what a miss costs",
    )
    parser.add_argument("--json", help="also write every measurement to this file")
    args = parser.parse_args()
    settings = load_settings(
        VOICE_AGENT_SPEECH="off",  # text turns only: no speech engines
        LATENCY_OPTIMIZATION_MODE="enabled",
        VOICE_AGENT_EMBEDDING_CACHE_SIZE=0,
        VOICE_AGENT_DEFAULT_FLOW="qa",
        VOICE_AGENT_AUDIT_LOG="",
    )
    print(
        f"# speculation: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, "
        f"{platform.processor() or platform.machine()}, word gap {args.word_gap_s} s"
        + (", bare partials" if args.bare else "")
    )
    service = build_service(settings)
    # Keep the warm FAQ answers only: an answer stored from one ask would serve the other.
    cache = next(t for t in service.responder.tiers if isinstance(t, CacheTier))
    cache.min_quality = float("inf")
    with Server(create_app(service=service)) as url:
        pairs = asyncio.run(drive(url, args.rounds, args.word_gap_s, args.bare))
    asyncio.run(service.aclose())

    used = sum(a["speculation"] == "used" for a, _ in pairs)
    same_tier = [(a, b) for a, b in pairs if a["source"] == b["source"]]
    for a, b in pairs:
        if a["source"] != b["source"]:
            print(
                f"tiers differ for {a['question']!r}: {a['source']} / {b['source']} "
                f"(cache: {a['cache']} / {b['cache']})"
            )
    print(f"\n{len(pairs)} pairs; speculation used in {used}; same tier both ways in "
          f"{len(same_tier)}")  # fmt: skip
    print("\n| first token, client (ms) | n | p50 | p95 | p99 |\n|---|---|---|---|---|")
    for source in sorted({a["source"] for a, _ in same_tier}):
        chosen = [(a, b) for a, b in same_tier if a["source"] == source]
        print(row(f"{source}: final only (baseline)", [b["first_token_ms"] for _, b in chosen]))
        print(row(f"{source}: with partials", [a["first_token_ms"] for a, _ in chosen]))
        print(row(f"{source}: saved (paired)", [b["first_token_ms"] - a["first_token_ms"]
                                                 for a, b in chosen]))  # fmt: skip
    for source in sorted({a["source"] for a, _ in same_tier}):
        chosen = [(a, b) for a, b in same_tier if a["source"] == source]
        base = percentile([b["first_token_ms"] for _, b in chosen], 50)
        spec = percentile([a["first_token_ms"] for a, _ in chosen], 50)
        print(f"{source}: p50 with partials / final only = {spec / base:.2f}x")
    stages = ("embedding", "retrieval", "speculation_wait")
    print("\n| server stage, all pairs (ms) | n | p50 | p95 | p99 |\n|---|---|---|---|---|")
    for stage in stages:
        for label, side in (("final only", 1), ("with partials", 0)):
            values = [p[side]["server"][stage] for p in pairs if stage in p[side]["server"]]
            if values:
                print(row(f"{stage}, {label}", values))
    if args.json:
        with open(args.json, "w") as out:
            json.dump([{"with": a, "without": b} for a, b in pairs], out, indent=1)


if __name__ == "__main__":
    main()
