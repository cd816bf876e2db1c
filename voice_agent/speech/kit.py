"""The process's speech: one recognizer and one phrasebook shared by its audio calls, and what
each call makes its own of (a voice-activity detector, the turn-taking timing)."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from voice_agent.audio import mulaw
from voice_agent.audio.resample import resample
from voice_agent.speech.engines import Recognizer, Samples, VoiceActivity
from voice_agent.speech.phrasebook import Phrasebook
from voice_agent.speech.turn_taking import TurnTiming
from voice_agent.speech.vad import VadKind, voice_activity


@dataclass(slots=True)
class SpeechKit:
    recognizer: Recognizer
    phrasebook: Phrasebook
    vad: VadKind = "webrtc"
    webrtc_aggressiveness: int = 2
    timing: TurnTiming = field(default_factory=TurnTiming)
    # While the agent's audio plays, caller audio counts as speech only when at least this
    # share of the agent audio's level: the line's echo of the agent is much quieter (phones
    # cancel echo by 20 dB and more; 0.25 is 12 dB).
    echo_ratio: float = 0.25
    # End the turn at the first short pause when the words sound finished (completeness.py);
    # off: only the commit silence ends it, the plain silence timer.
    end_on_words: bool = True
    # Recognition on one thread: the recognizer already spreads one utterance over the cores.
    executor: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(max_workers=1, thread_name_prefix="recognize")
    )

    def new_vad(self) -> VoiceActivity:
        return voice_activity(self.vad, self.webrtc_aggressiveness)

    async def transcribe(self, audio: Samples) -> str:
        """The words in 8 kHz audio, recognized on the worker thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, self._transcribe, audio)

    def _transcribe(self, audio: Samples) -> str:
        rate = self.recognizer.sample_rate
        return self.recognizer.transcribe(resample(audio, mulaw.SAMPLE_RATE, rate))

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.phrasebook.close()
