"""Speech for the service's audio calls: the engines the settings name, loaded at start-up, and
the sentences the fast tiers can say (template variants, the flows' lines, the service's own
lines, every cached answer) made into audio in the background once the service runs, and each
answer the cache keeps after that as it is kept."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Iterable

from quick_responses.pack import render
from voice_agent.flows import FlowLibrary
from voice_agent.settings import Settings
from voice_agent.speech.engines import Recognizer, Synthesizer
from voice_agent.speech.kit import SpeechKit
from voice_agent.speech.phrasebook import Phrasebook
from voice_agent.speech.turn_taking import TurnTiming
from voice_agent.tasks import TaskScope
from voice_agent.tiers.cache import CacheTier
from voice_agent.tiers.quick import QuickTier

log = logging.getLogger(__name__)


def build_speech(settings: Settings) -> SpeechKit | None:
    """The engines, loaded (about a second for the offline ones); None when speech is off."""
    recognizer: Recognizer
    synthesizer: Synthesizer
    if settings.speech == "off":
        return None
    if settings.speech == "openai":
        from voice_agent.speech.openai_speech import OpenAIRecognizer, OpenAISynthesizer

        url, key = settings.openai_base_url, settings.openai_api_key
        recognizer = OpenAIRecognizer(url, key, settings.stt_model)
        synthesizer = OpenAISynthesizer(url, key, settings.tts_model, settings.tts_voice)
    else:
        from voice_agent.speech.piper_voice import PiperSynthesizer
        from voice_agent.speech.whisper import WhisperRecognizer

        recognizer = WhisperRecognizer(
            threads=settings.recognizer_threads, window_s=settings.recognizer_window_s
        )
        synthesizer = PiperSynthesizer()
    return speech_kit(settings, recognizer, synthesizer)


def speech_kit(settings: Settings, recognizer: Recognizer, synthesizer: Synthesizer) -> SpeechKit:
    timing = TurnTiming(
        start_speech_ms=settings.speech_start_ms,
        barge_in_speech_ms=settings.barge_in_speech_ms,
        early_silence_ms=settings.early_silence_ms,
        commit_silence_ms=settings.commit_silence_ms,
    )
    size = settings.phrasebook_max_mb * 1024 * 1024
    phrasebook = Phrasebook(synthesizer, size, settings.phrasebook_dir)
    return SpeechKit(recognizer, phrasebook, settings.speech_vad, settings.vad_aggressiveness,
                     timing, settings.echo_ratio, settings.end_on_words)  # fmt: skip


def fast_lines(
    settings: Settings, flows: FlowLibrary, quick: QuickTier | None, cache: CacheTier | None
) -> list[str]:
    """Every line the fast tiers and the flows can say without an LLM, placeholders filled
    with the service's own values (a line that needs a call's own is left out)."""
    context = {"business": settings.business_name}
    lines = [settings.fallback_text, settings.filler_text, settings.time_limit_goodbye,
             settings.drain_goodbye]  # fmt: skip
    for flow in flows.flows.values():
        values = {**context, **flow.context}
        for state in flow.states.values():
            lines += [render(t, values) for t in (state.say, state.reprompt) if t and
                      _filled(t, values)]  # fmt: skip
    if quick is not None:
        pack = quick.responder.pack
        texts = [r for i in pack.intents.values() for r in i.responses]
        texts += [r for o in pack.overrides.values() for rs in o.values() for r in rs]
        lines += [render(t, context) for t in texts if _filled(t, context)]
    if cache is not None:
        lines += sorted(cache.cache.answers())
    return list(dict.fromkeys(lines))


_PLACEHOLDER = re.compile(r"{(\w+)}")


def _filled(template: str, values: dict[str, str]) -> bool:
    return all(name in values for name in _PLACEHOLDER.findall(template))


class SpeechWarmer:
    """Makes the fast lines' audio in the background, and each answer the cache keeps."""

    def __init__(self, kit: SpeechKit, lines: Iterable[str], cache: CacheTier | None) -> None:
        self._kit = kit
        self._lines = list(lines)
        self._tasks = TaskScope("speech-warm")
        self._cache = cache
        self.done = asyncio.Event()
        # Answers the cache keeps, made one at a time behind the start-up set; past the bound
        # they are made when first said.
        self._answers: asyncio.Queue[str] = asyncio.Queue(maxsize=1000)

    def start(self) -> None:
        self._tasks.spawn(self._warm(), name="phrasebook")
        if self._cache is not None:
            self._cache.stored.append(self._kept)

    async def _warm(self) -> None:
        try:
            made = await self._kit.phrasebook.prepare(self._lines)
            log.info("speech: %d sentences made ahead for the fast tiers", made)
        finally:
            self.done.set()  # ready either way: a sentence not made ahead is made when said
        while True:
            await self._kit.phrasebook.prepare([await self._answers.get()])

    def _kept(self, answer: str) -> None:
        try:
            self._answers.put_nowait(answer)
        except asyncio.QueueFull:
            log.debug("speech: an answer kept is made when first said (the queue is full)")

    async def aclose(self) -> None:
        if self._cache is not None:
            self._cache.stored.remove(self._kept)
        await self._tasks.cancel_all(1.0)
