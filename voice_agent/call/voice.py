"""The processors around a call session for a frontend that sends audio (Media Streams): the
caller's audio through voice activity and turn taking to recognition, and the words as the
session's utterances; the session's words through the phrasebook (audio made ahead, or
synthesized sentence by sentence) to audio with marks; barge-in (`clear`, the turn stopped,
history trimmed to what the marks say was played); the caller's silence timed from the end of
the agent's audio. The session, flows and tiers are the same as for text calls."""

from __future__ import annotations

import asyncio
import logging
import math
from collections import deque
from collections.abc import Callable

import numpy as np

from voice_agent.audio import mulaw
from voice_agent.call.delivery import Send
from voice_agent.call.playback import Playback
from voice_agent.call.session import CallSession
from voice_agent.events import (
    AgentEvent,
    AudioIn,
    AudioOut,
    CallerEvent,
    CallerSilent,
    ClearAudio,
    Delta,
    Done,
    Dtmf,
    Ended,
    Interrupt,
    Listening,
    Mark,
    Played,
    Utterance,
)
from voice_agent.speech.completeness import sounds_finished
from voice_agent.speech.kit import SpeechKit
from voice_agent.speech.sentences import SentenceBuffer
from voice_agent.speech.turn_taking import Committed, Paused, Resumed, Signal, Started, TurnTaker
from voice_agent.tasks import TaskScope
from voice_agent.turn import now

log = logging.getLogger(__name__)

Clock = Callable[[], float]
MAX_ENDING_WAIT_S = 30.0  # the longest an ending call waits for its last words to be played


class VoiceCall:
    def __init__(self, kit: SpeechKit, send: Send, clock: Clock = now) -> None:
        self._kit = kit
        self._send = send  # the socket's: agent events, audio among them, to the frontend
        self._clock = clock
        self.session: CallSession | None = None  # set by whoever builds both
        self._vad = kit.new_vad()
        self._turns = TurnTaker(kit.timing)
        self._tasks = TaskScope("voice")
        self._playback = Playback()
        self._partial = b""  # caller audio short of a whole frame
        self._energy: deque[float] = deque(maxlen=10)  # the caller's last frames' mean squares
        # Recognition: the utterance a result belongs to, and its words once known.
        self._hearing = 0  # bumped by every pause and resumption: older results are stale
        self._words: str | None = None
        self._commit_on: int | None = None  # the recognition to commit once it is done
        self._committed = ""  # the words last handed to the session as final, this utterance
        self._speech_end = 0.0  # when the caller last spoke (the turn's received time)
        # Speaking: the session's words, sentence by sentence, in order.
        self._buffer = SentenceBuffer()
        self._out_turn = 0
        self._dropped_turn = 0  # a turn barged into: its words still arriving are not spoken
        self._queue: asyncio.Queue[tuple[int, str]] = asyncio.Queue(maxsize=256)
        self._speaker: asyncio.Task[None] | None = None
        self._pieces = 0
        self._silence_s: float | None = None  # the newest Listening's timeout
        self._caller_has_floor = False  # the agent is done: the caller's silence is timed
        self._silence: asyncio.Task[None] | None = None
        self._recognition: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def _session(self) -> CallSession:
        assert self.session is not None, "a voice call needs its session"
        return self.session

    # Caller side

    async def handle(self, event: CallerEvent, received_at: float | None = None) -> None:
        if isinstance(event, AudioIn):
            if not self._session.ended:  # an ending call only waits for its audio to play
                await self._audio(event.audio)
        elif isinstance(event, Played):
            self._playback.played(event.name, self._clock())
            self._arm_silence()
        else:
            if isinstance(event, Dtmf) and self._agent_speaking():
                await self._barge_in()
            self._stop_silence()
            await self._session.handle(event, received_at)

    async def _audio(self, audio: bytes) -> None:
        data = self._partial + audio
        whole = len(data) - len(data) % mulaw.FRAME_BYTES
        self._partial = data[whole:]
        for start in range(0, whole, mulaw.FRAME_BYTES):
            frame = mulaw.decode(data[start : start + mulaw.FRAME_BYTES])
            voiced = self._not_echo(frame) and self._vad.is_speech(frame)
            if voiced:
                self._speech_end = self._clock()
            speaking = self._agent_speaking()
            for signal in self._turns.feed(frame, voiced, agent_speaking=speaking):
                await self._on_signal(signal)

    def _not_echo(self, frame: np.ndarray) -> bool:
        """While the agent's audio plays, the caller's last 200 ms must be loud enough beside
        it not to be its echo (a frame alone swings too far between syllables)."""
        self._energy.append(_rms(frame) ** 2)
        level = self._playback.level(self._clock())
        if level <= 0:
            return True
        return math.sqrt(sum(self._energy) / len(self._energy)) >= self._kit.echo_ratio * level

    def _agent_speaking(self) -> bool:
        """Agent audio is playing, or words are waiting to become audio."""
        making = self._speaker is not None and not self._speaker.done()
        return making or self._playback.speaking(self._clock())

    async def _on_signal(self, signal: Signal) -> None:
        log.debug("voice: %s", type(signal).__name__)
        if isinstance(signal, Started | Resumed):
            self._stop_silence()
            self._words = None
            if isinstance(signal, Resumed):
                self._hearing += 1  # the recognition under way has only part of the words
                self._commit_on = None
                self._drop_stale_recognition()
            else:
                self._committed = ""
            if self._agent_speaking():
                await self._barge_in()
        elif isinstance(signal, Paused):
            self._hearing += 1
            self._words = None
            self._drop_stale_recognition()
            work = self._recognize(self._hearing, signal.audio, self._speech_end)
            self._recognition = self._tasks.spawn(work, name="recognize")
        elif isinstance(signal, Committed):
            if self._words is None:
                self._commit_on = self._hearing  # committed once its words are known
            else:
                await self._commit(self._words, self._speech_end)

    def _drop_stale_recognition(self) -> None:
        """A recognition whose words a newer one will have all of is not needed (one still to
        be committed is): cancelled, it leaves the recognizer's queue if it has not started."""
        task = self._recognition
        if task is not None and not task.done() and self._commit_on is None:
            task.cancel()

    async def _recognize(self, hearing: int, audio: np.ndarray, ended: float) -> None:
        try:
            words = (await self._kit.transcribe(audio)).strip()
        except Exception:  # task boundary: one utterance lost, never the call
            log.exception("recognition failed")
            words = ""
        log.debug("voice: heard %r", words)
        if hearing == self._commit_on:
            # The turn ended in silence while this was recognized; the caller may have begun
            # another utterance since, which does not make these words stale.
            self._commit_on = None
            await self._commit(words, ended)
            return
        if hearing != self._hearing:
            return  # the caller went on: a newer pause recognizes all of it
        self._words = words
        if self._kit.end_on_words and sounds_finished(words):
            await self._commit(words, ended)
        elif words:
            await self._session.handle(Utterance(words, final=False))

    async def _commit(self, words: str, ended: float) -> None:
        """The caller's turn, timed from the end of its speech (`ended`)."""
        if not words or words == self._committed:
            self._arm_silence()  # noise, or nothing new: the caller still has the floor
            return
        self._committed = words
        if self._agent_speaking():
            # An answer to the words so far (the turn ended early on them) is now stale: the
            # session cancels its turn for the new one, and the phone must drop its audio.
            await self._barge_in()
        self._stop_silence()
        self._caller_has_floor = False
        await self._session.handle(Utterance(words, final=True), ended)

    async def _barge_in(self) -> None:
        """The caller talks over the agent: drop its audio, stop its turn, keep what was heard."""
        at = self._clock()
        heard = self._playback.heard(at, self._out_turn)
        self._dropped_turn = self._out_turn
        self._caller_has_floor = True
        self._drop_audio()
        await self._send(ClearAudio())
        await self._session.handle(Interrupt(heard))

    # Agent side

    async def send(self, event: AgentEvent) -> None:
        """The session's sender: words become audio; the rest goes on to the frontend."""
        if isinstance(event, Delta):
            if event.turn_id != self._out_turn:
                self._out_turn, self._buffer = event.turn_id, SentenceBuffer()
            self._caller_has_floor = False  # the agent talks: no reminder until it is done
            self._stop_silence()
            await self._say(event.turn_id, self._buffer.add(event.text))
        elif isinstance(event, Done):
            if event.turn_id == self._out_turn:
                await self._say(event.turn_id, self._buffer.flush())
        elif isinstance(event, Listening):
            self._silence_s = event.silence_timeout_s
            self._caller_has_floor = True
            self._arm_silence()
            await self._send(event)
        elif isinstance(event, Ended):
            if event.reason == "caller_hangup":
                self._drop_audio()  # nobody is listening
            else:
                await self._finish_speaking()
            await self._send(event)
        else:
            await self._send(event)

    async def _say(self, turn_id: int, sentences: list[str]) -> None:
        if turn_id <= self._dropped_turn or self._closed:
            return
        for sentence in sentences:
            await self._queue.put((turn_id, sentence))
        if sentences and (self._speaker is None or self._speaker.done()):
            self._speaker = self._tasks.spawn(self._speak(), name="speak")

    async def _speak(self) -> None:
        while not self._queue.empty():
            turn_id, sentence = self._queue.get_nowait()
            try:
                audio = await self._kit.phrasebook.speak(sentence)
            except Exception:  # task boundary: a sentence not spoken, never the call
                log.exception("could not synthesize %r", sentence)
                continue
            if turn_id <= self._dropped_turn or not audio:
                continue
            self._pieces += 1
            name = f"{turn_id}.{self._pieces}"
            await self._send(AudioOut(audio))
            if turn_id <= self._dropped_turn:
                continue  # cleared while it was being sent: the phone has dropped it
            await self._send(Mark(name))
            duration = len(audio) / mulaw.SAMPLE_RATE
            level = _rms(mulaw.decode(audio))
            self._playback.sent(name, turn_id, sentence, duration, level, self._clock())

    def _drop_audio(self) -> None:
        while not self._queue.empty():
            self._queue.get_nowait()
        self._playback.clear()

    async def _finish_speaking(self) -> None:
        """The call is ending: its last words are spoken and played before the socket closes."""
        deadline = self._clock() + MAX_ENDING_WAIT_S
        # Polled: the end of playing is a time estimated from the audio's length, as well as
        # the last mark's return.
        while self._clock() < deadline and self._agent_speaking():  # noqa: ASYNC110
            await asyncio.sleep(0.05)

    # The caller's silence, from the end of the agent's audio

    def _quiet(self) -> bool:
        """The caller's silence counts: the agent is done and audible no more, nobody talks."""
        return (
            self._caller_has_floor
            and self._silence_s is not None
            and not self._agent_speaking()
            and not self._turns.in_utterance
            and not self._closed
        )

    def _arm_silence(self) -> None:
        if not self._quiet():
            return
        assert self._silence_s is not None
        self._stop_silence()
        self._silence = self._tasks.spawn(self._silent(self._silence_s), name="silence")

    def _stop_silence(self) -> None:
        if self._silence is not None and not self._silence.done():
            self._silence.cancel()
        self._silence = None

    async def _silent(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        self._silence = None
        if not self._quiet():
            return  # re-armed when the agent's audio has played or the caller's turn is over
        self._caller_has_floor = False  # the reminder's turn says how long to wait next
        await self._session.handle(CallerSilent())

    async def close(self) -> None:
        self._closed = True
        self._drop_audio()
        await self._tasks.cancel_all(0.5)


def _rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(samples.astype(np.float64))))) if len(samples) else 0.0


__all__ = ["VoiceCall"]
