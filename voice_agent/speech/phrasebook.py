"""Audio made ahead: every sentence the fast tiers may say (template variants, cached answers,
the flows' lines) synthesized once into ready 8 kHz mu-law, so a template or a cached answer
is heard without waiting for synthesis. Shared by the process's calls; bounded in bytes, the
least recently spoken dropped first. Sentences not in it are synthesized when asked and kept.

With a folder, audio made is also kept on disk (a file per sentence, named by a hash of the
synthesizer's identity and the words), so a restarted process finds it without synthesizing.

Synthesis runs on one worker thread. Making audio ahead goes a sentence at a time, so a live
turn's sentence waits behind at most one sentence being made ahead."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections import OrderedDict
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from voice_agent.audio import mulaw
from voice_agent.audio.resample import resample
from voice_agent.speech.engines import Synthesizer
from voice_agent.speech.sentences import normalize, split

log = logging.getLogger(__name__)


class Phrasebook:
    def __init__(
        self,
        synthesizer: Synthesizer,
        max_bytes: int = 64 * 1024 * 1024,
        folder: Path | None = None,
    ) -> None:
        self._synthesizer = synthesizer
        self._folder = folder
        self._max_bytes = max_bytes
        self._audio: OrderedDict[str, bytes] = OrderedDict()
        self._bytes = 0
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="synthesis")
        self.made = 0  # sentences synthesized, ahead or on demand
        self.found = 0  # sentences asked for and found ready

    def __len__(self) -> int:
        return len(self._audio)

    def get(self, sentence: str) -> bytes | None:
        key = normalize(sentence)
        audio = self._audio.get(key)
        if audio is not None:
            self._audio.move_to_end(key)
        return audio

    def mulaw(self, sentence: str, keep: bool = False) -> bytes:
        """`sentence` synthesized to 8 kHz mu-law, or read from the folder; with `keep`, the
        audio made is written there too (blocking: the worker thread's work). Only sentences
        made ahead are kept on disk: a sentence said on demand may carry a caller's data."""
        path = self._path(sentence)
        if path is not None and path.is_file():
            return path.read_bytes()
        samples = self._synthesizer.synthesize(sentence)
        audio = mulaw.encode(resample(samples, self._synthesizer.sample_rate, mulaw.SAMPLE_RATE))
        if keep and path is not None and audio:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                temporary = path.with_suffix(".tmp")
                temporary.write_bytes(audio)
                temporary.replace(path)
            except OSError as exc:  # a full or read-only disk costs a synthesis next time
                log.warning("audio made is kept in memory only: cannot write %s (%s)", path, exc)
                self._folder = None
        return audio

    def _path(self, sentence: str) -> Path | None:
        if self._folder is None:
            return None
        name = f"{self._synthesizer.identity}\n{sentence}".encode()
        return self._folder / f"{hashlib.sha256(name).hexdigest()[:40]}.ulaw"

    async def speak(self, sentence: str) -> bytes:
        """The sentence's audio: ready, or synthesized now and kept."""
        key = normalize(sentence)
        audio = self.get(key)
        if audio is not None:
            self.found += 1
            return audio
        loop = asyncio.get_running_loop()
        audio = await loop.run_in_executor(self._executor, self.mulaw, key)
        self._keep(key, audio)
        return audio

    async def prepare(self, texts: Iterable[str]) -> int:
        """Make the audio of every sentence of `texts` not already made; how many were made.
        Meant for a background task: it yields to live turns between sentences."""
        loop = asyncio.get_running_loop()
        made = 0
        for text in texts:
            for key in split(text):
                if key in self._audio or "{" in key:  # a line with placeholders is per call
                    continue
                try:
                    audio = await loop.run_in_executor(self._executor, self.mulaw, key, True)
                except Exception:  # one sentence the voice cannot read must not stop the rest
                    log.exception("could not synthesize %r ahead", key)
                    continue
                self._keep(key, audio)
                made += 1
        return made

    def _keep(self, key: str, audio: bytes) -> None:
        self.made += 1
        if key in self._audio:
            return
        self._audio[key] = audio
        self._bytes += len(audio)
        while self._bytes > self._max_bytes and len(self._audio) > 1:
            _, dropped = self._audio.popitem(last=False)
            self._bytes -= len(dropped)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
