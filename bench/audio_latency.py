"""Audio calls end to end: from the end of a caller's speech to the first agent audio frame.

Callers are the bundled Piper voice, put through the phone line (8 kHz mu-law) and sent over
/twilio/media as real-time 20 ms frames by a simulated Twilio phone (frontends/twilio_phone.py)
that plays the agent's audio back at the pace of speech and names its marks. The service runs
in this process on a loopback port with the offline engines (Whisper tiny.en, the Piper voice),
the pharmacy's knowledge base and its FAQ warmed into the cache. The LLM is the extractive
stand-in unless `--llm configured` (the bundled SmolLM2): the LLM row then shows what speech
adds around an answer made in about a millisecond, with its sentences synthesized on demand.

Reported: per source (template, cache, llm; as the service's telemetry says), the end of speech
to the first agent audio, p50/p95; the word error rate of what the service heard; false
cut-offs on lines spoken with a pause in the middle (a turn taken on the first half), with the
end of turn on words (the default) and with the plain silence timer; and, with `--concurrency`,
how many calls at once one process holds in real time.

    .venv/bin/python bench/audio_latency.py [--rounds 1] [--concurrency 1,4,8,16,24]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import re
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.append(str(Path(__file__).resolve().parent))

import numpy as np
import websockets
from concurrency import cpu_seconds, free_port, process
from turn_latency import percentile

from voice_agent.audio import mulaw
from voice_agent.cache.warming import faq_pairs
from voice_agent.frontends.twilio_phone import TwilioPhone
from voice_agent.server.app import create_app
from voice_agent.server.build import build_service, warm_at_start
from voice_agent.server.loopback import on_loopback
from voice_agent.server.speech import build_speech
from voice_agent.settings import load_settings
from voice_agent.speech.kit import SpeechKit

TEMPLATE_LINES = [
    "Hello.", "How are you doing?", "Thank you so much.", "Are you a robot?",
    "What's your name?", "Who made you?", "Hold on a second.", "Thanks.",
]  # fmt: skip
LLM_LINES = [
    "Do you carry medication for pets?", "Where can I dispose of old medication?",
    "Do you sell blood pressure monitors?", "Can I get a copy of my vaccine records?",
    "Do you have a drive-through window?", "What languages do your pharmacists speak?",
]  # fmt: skip
# Said with a pause after the first part: a turn on the first part alone is a false cut-off.
# The rules of speech/completeness.py were written looking at these ...
PAUSED_LINES = [
    ("I would like to know", "what time you open on Saturday."),
    ("Can you tell me", "if you take Aetna insurance?"),
    ("My question is about", "the price of the savings club."),
    ("Where can I", "get a flu shot?"),
    ("I need to know", "whether you deliver."),
    ("Do you have", "parking at the store?"),
]
# ... and never at these: the false cut-offs reported are theirs.
HELD_OUT_PAUSED = [
    ("Could you check", "whether my prescription is ready?"),
    ("I was wondering", "if you sell hearing aid batteries."),
    ("What are", "your hours on holidays?"),
    ("Is it possible", "to get my flu shot today?"),
    ("I'm calling because", "my refill never arrived."),
    ("How much does", "a blood pressure check cost?"),
    ("Do you know", "if the pharmacist is in today?"),
    ("I'd like to ask", "about your delivery area."),
    ("Can I", "pay with my HSA card?"),
    ("Tell me", "how late you are open tonight."),
]
MID_PAUSE_S = 0.4
SOURCES = {"quick": "template", "cache": "cache", "llm": "llm", "fallback": "llm"}


def words(text: str) -> list[str]:
    text = text.lower().replace("-", " ").replace("'", "")
    return re.sub(r"[^a-z0-9 ]", " ", text).split()


def edits(a: list[str], b: list[str]) -> int:
    row = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        prev, row[0] = row[0], i
        for j in range(1, len(b) + 1):
            cur = row[j]
            row[j] = min(row[j] + 1, row[j - 1] + 1, prev + (a[i - 1] != b[j - 1]))
            prev = cur
    return row[len(b)]


def trimmed(audio: bytes) -> bytes:
    """The synthesized line without its trailing silence: the last frame sent is speech."""
    frames = mulaw.frames(audio)
    loud = [i for i, f in enumerate(frames) if np.abs(mulaw.decode(f).astype(int)).max() > 600]
    return b"".join(frames[: loud[-1] + 1]) if loud else audio


class Bench:
    def __init__(self, kit: SpeechKit, url: str) -> None:
        self.kit, self.url = kit, url
        self.voices: dict[str, bytes] = {}

    def voice(self, text: str) -> bytes:
        if text not in self.voices:
            self.voices[text] = trimmed(self.kit.phrasebook.mulaw(text))
        return self.voices[text]

    async def call(
        self, call_id: str, lines: list[Any], gap_s: float = 0.6, quiet_s: float = 0.5
    ) -> list[dict[str, Any]]:
        """One call saying `lines` in turn (a tuple: two parts with a pause); each result has
        the line, the time to first audio, and the turns the service took for it."""
        results = []
        async with websockets.connect(self.url) as ws, TwilioPhone(ws) as phone:
            await phone.start(call_id, flow="qa")
            await phone.silence(quiet_s)
            for line in lines:
                began = time.time()
                if isinstance(line, tuple):
                    await phone.play(self.voice(line[0]))
                    await phone.silence(MID_PAUSE_S)
                    ended = await phone.play(self.voice(line[1]))
                    text = f"{line[0]} {line[1]}"
                else:
                    ended = await phone.play(self.voice(line))
                    text = line
                quiet = await phone.until_quiet(ended - 3.0, quiet_s=0.6, limit_s=20)
                first = phone.first_audio_after(ended)
                results.append({"line": text, "paused": isinstance(line, tuple), "call": call_id,
                                "began": began,
                                "first_audio_ms": None if first is None else 1000 * (first - ended),
                                "answered": quiet})  # fmt: skip
                await phone.silence(gap_s)
        return results


async def drain(turns: asyncio.Queue[str]) -> list[dict[str, Any]]:
    out = []
    while not turns.empty():
        out.append(json.loads(turns.get_nowait()))
    return out


def attach(results: list[dict[str, Any]], events: list[dict[str, Any]]) -> None:
    """Each line's turns, from the service's telemetry: those of its call that came between
    the line's first word and the next line's."""
    for index, result in enumerate(results):
        following = next((r["began"] for r in results[index + 1 :]
                          if r["call"] == result["call"]), float("inf"))  # fmt: skip
        own = [e for e in events if e["call"] == result["call"]]
        taken = [e for e in own if result["began"] <= e["at"] < following]
        result["turns"] = taken
        result["source"] = SOURCES.get(taken[-1]["source"]) if taken else None
        result["heard"] = (taken[-1].get("question") or "") if taken else ""


def summary(results: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    plain = [r for r in results if not r["paused"]]
    for source in ("template", "cache", "llm"):
        times = [
            r["first_audio_ms"] for r in plain if r["source"] == source and r["first_audio_ms"]
        ]
        out[source] = {"n": len(times), "p50": percentile(times, 50), "p95": percentile(times, 95)}
    errors = sum(edits(words(r["line"]), words(r["heard"])) for r in results)
    total = sum(len(words(r["line"])) for r in results)
    out["wer_percent"] = 100 * errors / max(1, total)
    held_out = {f"{a} {b}" for a, b in HELD_OUT_PAUSED}
    for name, chosen in (("tuning", False), ("held_out", True)):
        paused = [r for r in results if r["paused"] and (r["line"] in held_out) == chosen]
        out[f"false_cutoffs_{name}"] = sum(1 for r in paused if len(r["turns"]) != 1)
        out[f"paused_lines_{name}"] = len(paused)
    return out


async def run(args: argparse.Namespace) -> dict[str, Any]:
    settings = load_settings(
        VOICE_AGENT_SPEECH="offline",
        VOICE_AGENT_LLM_BACKEND="local" if args.llm == "configured" else "extractive",
        VOICE_AGENT_DEFAULT_FLOW="qa",
        VOICE_AGENT_TELEMETRY_FILE="",
        VOICE_AGENT_AUDIT_LOG="",
        VOICE_AGENT_LOG_LEVEL="WARNING",
    )
    kit = build_speech(settings)
    assert kit is not None
    service = build_service(settings, speech=kit)
    cache_lines = [p.question for p in faq_pairs(service.knowledge.documents)][: args.cache_lines]
    app = create_app(service=service)
    machine = f"{os.cpu_count()} cores, {platform.processor() or platform.machine()}"
    when = datetime.now(UTC).isoformat(timespec="seconds")
    report: dict[str, Any] = {"when": when, "machine": machine, "llm": args.llm}
    async with on_loopback(app, stop_timeout_s=10) as http:
        url = http.replace("http://", "ws://") + "/twilio/media"
        if service.speech_warmer is not None:
            await service.speech_warmer.done.wait()
        queue = service.stream.subscribe()
        bench = Bench(kit, url)
        n = 2 if args.smoke else None
        lines: list[Any] = [
            *TEMPLATE_LINES[:n],
            *cache_lines[:n],
            *LLM_LINES[:n],
            *PAUSED_LINES[:n],
            *HELD_OUT_PAUSED[:n],
        ]
        for text in [x for line in lines for x in (line if isinstance(line, tuple) else (line,))]:
            bench.voice(text)
        for mode in [m for m in args.modes.split(",") if m]:
            kit.end_on_words = mode == "words"
            # Each mode from the same cache: the FAQ warmed, no answer kept from before.
            assert service.cache is not None
            service.cache.cache.flush()
            warm_at_start(service)
            results: list[dict[str, Any]] = []
            for round_ in range(args.rounds):
                chunk = 6
                for at in range(0, len(lines), chunk):
                    results += await bench.call(f"{mode}-{round_}-{at}", lines[at : at + chunk])
            await asyncio.sleep(0.5)
            attach(results, await drain(queue))
            report[f"end_on_{mode}"] = summary(results)
            print(mode, json.dumps(report[f"end_on_{mode}"], indent=1), flush=True)
            if mode == "words":
                report["lines"] = results
        kit.end_on_words = True
    await service.aclose()
    levels = [int(x) for x in args.concurrency.split(",") if x]
    if levels:
        fast = TEMPLATE_LINES[:4] + cache_lines[:4]
        report["concurrency"] = await asyncio.to_thread(capacity, kit, levels, fast)
    kit.close()
    return report


def capacity(kit: SpeechKit, levels: list[int], fast: list[str]) -> dict[int, dict[str, float]]:
    """Calls at once against the service in a process of its own (`voice-agent serve`), the
    phones in this one: each call says the fast lines (templates, FAQ) with 1.5 s between,
    the calls' first lines spread over 6 s."""
    port = free_port()
    env = {
        "VOICE_AGENT_PORT": str(port), "VOICE_AGENT_SPEECH": "offline",
        "VOICE_AGENT_LLM_BACKEND": "extractive", "VOICE_AGENT_DEFAULT_FLOW": "qa",
        "VOICE_AGENT_LOG_LEVEL": "WARNING", "VOICE_AGENT_TELEMETRY_FILE": "",
        "VOICE_AGENT_AUDIT_LOG": "", "VOICE_AGENT_MAX_CALLS": "0",
    }  # fmt: skip
    rows: dict[int, dict[str, float]] = {}
    command = [sys.executable, "-m", "voice_agent", "serve"]
    with process(command, env, f"http://127.0.0.1:{port}/ready") as pid:
        bench = Bench(kit, f"ws://127.0.0.1:{port}/twilio/media")
        for level in levels:
            # Calls do not begin in step: each is quiet a while first (up to one line's cycle).
            rng = random.Random(level)
            calls = [bench.call(f"c{level}-{i}", fast[i % 8 :] + fast[: i % 8], gap_s=1.5,
                                quiet_s=rng.uniform(0.5, 6.0)) for i in range(level)]  # fmt: skip
            cpu, own, started = cpu_seconds(pid), cpu_seconds(os.getpid()), time.perf_counter()
            results = [r for batch in asyncio.run(gather(calls)) for r in batch]
            seconds = time.perf_counter() - started
            times = [r["first_audio_ms"] for r in results if r["first_audio_ms"] is not None]
            rows[level] = {"turns": len(results), "p50": percentile(times, 50),
                           "p95": percentile(times, 95), "p99": percentile(times, 99),
                           "unanswered": sum(1 for r in results if r["first_audio_ms"] is None),
                           "service_cores": (cpu_seconds(pid) - cpu) / seconds,
                           "phones_cores": (cpu_seconds(os.getpid()) - own) / seconds,
                           "seconds": seconds}  # fmt: skip
            print("concurrency", level, rows[level], flush=True)
    return rows


async def gather(calls: list[Any]) -> list[Any]:
    return list(await asyncio.gather(*calls))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--cache-lines", type=int, default=8)
    parser.add_argument("--llm", choices=["extractive", "configured"], default="extractive")
    parser.add_argument("--concurrency", default="1,4,8,16,24")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--modes", default="words,silence", help="end of turn: words, silence")
    parser.add_argument("--smoke", action="store_true", help="two lines of each kind: a check")
    args = parser.parse_args()
    report = asyncio.run(run(args))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
