"""Whisper tiny.en's input window: word error rate and time to text per window length.

Sentences from CLINC150's test split (../shared/data/clinc150; a fixed random sample), spoken
by the bundled Piper voice, put through the phone line (8 kHz mu-law) and back to 16 kHz, then
recognized with the window at 30 s (what faster-whisper always uses), and shorter. The service
uses the utterance rounded up to `VOICE_AGENT_RECOGNIZER_WINDOW_S` (10 s by default).

    .venv/bin/python bench/recognizer_window.py [--sentences 100] [--windows 30,10,5]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.append(str(Path(__file__).resolve().parent))

from audio_latency import edits, words
from turn_latency import percentile

from voice_agent.audio import mulaw
from voice_agent.audio.resample import resample
from voice_agent.speech.piper_voice import PiperSynthesizer
from voice_agent.speech.whisper import WhisperRecognizer

CLINC = Path(__file__).resolve().parents[2] / "shared" / "data" / "clinc150" / "data_full.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentences", type=int, default=100)
    parser.add_argument("--windows", default="30,10,5")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    test = json.loads(CLINC.read_text())["test"]
    sentences = [text for text, _ in random.Random(args.seed).sample(test, args.sentences)]
    voice = PiperSynthesizer()
    audio = []
    for sentence in sentences:
        line = mulaw.encode(resample(voice.synthesize(sentence), voice.sample_rate, 8000))
        audio.append(resample(mulaw.decode(line), 8000, 16000))
    print("| window | WER | time to text p50 / p95 (ms) |\n|---|---|---|")
    for window in [float(w) for w in args.windows.split(",")]:
        recognizer = WhisperRecognizer(window_s=window)
        recognizer.transcribe(audio[0])  # warm
        errors = total = 0
        times = []
        for sentence, samples in zip(sentences, audio, strict=True):
            started = time.perf_counter()
            heard = recognizer.transcribe(samples)
            times.append(1000 * (time.perf_counter() - started))
            errors += edits(words(sentence), words(heard))
            total += len(words(sentence))
        rate = f"{100 * errors / total:.1f}% ({errors} of {total} words)"
        took = f"{percentile(times, 50):.0f} / {percentile(times, 95):.0f}"
        print(f"| {window:g} s | {rate} | {took} |", flush=True)


if __name__ == "__main__":
    main()
