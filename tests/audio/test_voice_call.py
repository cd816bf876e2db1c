"""The voice layer of an audio call with fake engines: the caller's audio through the real
WebRTC detector and turn taking to a recognizer that hears fixed words, handed to the session
as utterances; the session's words through the phrasebook to audio with a mark per sentence;
barge-in (clear, an interrupt with what the marks say was heard); the echo of the agent's own
audio not taken for the caller; the caller's silence timed from the end of the agent's audio.
The session is a recorder and time is a manual clock; background tasks are polled, never
timed."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import numpy as np
import pytest

from voice_agent.audio import mulaw
from voice_agent.audio.resample import resample
from voice_agent.call.voice import VoiceCall
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
from voice_agent.speech.kit import SpeechKit
from voice_agent.speech.phrasebook import Phrasebook
from voice_agent.speech.turn_taking import Paused, TurnTaker
from voice_agent.speech.vad import WebRtcVad

from ..fakes import ManualClock, settle
from .speech_fakes import FakeRecognizer, FakeSynthesizer

GREETING = "Hello there. How can I help?"


def voice_frame(amplitude: float = 3000) -> bytes:
    """20 ms of a voice-like sound (150 Hz and its harmonics: three whole periods, so frames
    follow each other without a click) as mu-law; WebRTC's detector calls it speech."""
    t = np.arange(mulaw.FRAME_BYTES) / mulaw.SAMPLE_RATE
    wave = sum((amplitude / k) * np.sin(2 * np.pi * 150 * k * t) for k in range(1, 10))
    return mulaw.encode(np.asarray(wave).astype(np.int16))


VOICE = voice_frame()
SILENCE = b"\xff" * mulaw.FRAME_BYTES


@dataclass
class RecordingSession:
    """Stands in for the call session: keeps what the voice layer hands it."""

    events: list[tuple[CallerEvent, float | None]] = field(default_factory=list)
    ended: bool = False

    async def handle(self, event: CallerEvent, received_at: float | None = None) -> None:
        self.events.append((event, received_at))

    def of(self, kind: type) -> list[CallerEvent]:
        return [e for e, _ in self.events if isinstance(e, kind)]


@dataclass
class Call:
    voice: VoiceCall
    session: RecordingSession
    sent: list[AgentEvent]
    recognizer: FakeRecognizer
    kit: SpeechKit
    clock: ManualClock

    async def hear(self, frame: bytes, count: int) -> None:
        await self.voice.handle(AudioIn(frame * count))

    def sent_of(self, kind: type) -> list[AgentEvent]:
        return [e for e in self.sent if isinstance(e, kind)]


async def until(condition: Callable[[], bool], what: str) -> None:
    """Wait for background work (recognition runs on a thread), polling; bounded."""
    for _ in range(2000):
        if condition():
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"never happened: {what}")


async def recognition_done(call: Call) -> None:
    """Every recognition asked for has returned and its task has gone on with the words."""
    await settle()  # the recognition tasks hand their audio to the (one) recognition thread
    await asyncio.get_running_loop().run_in_executor(call.kit.executor, lambda: None)
    await settle()


def make_call(recognizer: FakeRecognizer, synthesizer: FakeSynthesizer) -> Call:
    kit = SpeechKit(recognizer=recognizer, phrasebook=Phrasebook(synthesizer), vad="webrtc")
    sent: list[AgentEvent] = []

    async def send(event: AgentEvent) -> None:
        sent.append(event)

    clock = ManualClock()
    voice = VoiceCall(kit, send, clock=clock)
    session = RecordingSession()
    voice.session = session  # type: ignore[assignment]
    return Call(voice, session, sent, recognizer, kit, clock)


@pytest.fixture
def recognizer() -> FakeRecognizer:
    return FakeRecognizer()


@pytest.fixture
def synthesizer() -> FakeSynthesizer:
    return FakeSynthesizer()


@pytest.fixture
async def call(recognizer: FakeRecognizer, synthesizer: FakeSynthesizer) -> AsyncIterator[Call]:
    made = make_call(recognizer, synthesizer)
    yield made
    if recognizer.gate is not None:
        recognizer.gate.set()
    await made.voice.close()
    made.kit.close()


async def speak_greeting(call: Call, turn_id: int = 1) -> None:
    """The session says GREETING (two sentences); waits until both are sent as audio."""
    await call.voice.send(Delta(turn_id, GREETING))
    await call.voice.send(Done(turn_id, GREETING, "quick", "start", {}, {}))
    await until(lambda: len(call.sent_of(Mark)) == 2, "both sentences sent")


# The caller's words


async def test_speech_then_a_pause_hands_the_session_the_finished_words(call: Call) -> None:
    spoke_at = call.clock.now
    await call.hear(VOICE, 15)
    call.clock.advance(1.0)
    await call.hear(SILENCE, 20)  # past the early silence (and the detector's own hangover)
    call.clock.advance(1.0)  # recognition takes its time
    await until(lambda: bool(call.session.events), "the utterance")
    [(event, received_at)] = call.session.events
    assert event == Utterance("I need a refill.", final=True)  # it sounds finished: at once
    assert len(call.recognizer.heard) == 1
    # the turn's time is when the caller stopped speaking, not when the words were known
    assert received_at is not None and spoke_at <= received_at < call.clock.now
    assert call.sent == []  # the agent was silent: nothing to clear


async def test_recognition_gets_the_paused_utterance_at_the_recognizer_s_rate(call: Call) -> None:
    audio = SILENCE * 15 + VOICE * 15 + SILENCE * 20
    await call.voice.handle(AudioIn(audio))
    # the same frames through a detector and turn taker of their own
    vad, turns = WebRtcVad(), TurnTaker()
    paused = [
        signal
        for start in range(0, len(audio), mulaw.FRAME_BYTES)
        for frame in [mulaw.decode(audio[start : start + mulaw.FRAME_BYTES])]
        for signal in turns.feed(frame, vad.is_speech(frame))
        if isinstance(signal, Paused)
    ]
    assert len(paused) == 1
    await recognition_done(call)
    [heard] = call.recognizer.heard
    assert np.array_equal(heard, resample(paused[0].audio, 8000, 16000))
    assert len(heard) == 2 * len(paused[0].audio)


async def test_unfinished_words_go_as_a_partial_then_as_final_after_the_commit_silence(
    call: Call,
) -> None:
    call.recognizer.words = "I want to refill my"
    await call.hear(VOICE, 15)
    await call.hear(SILENCE, 20)
    await until(lambda: bool(call.session.events), "the partial")
    assert [e for e, _ in call.session.events] == [Utterance("I want to refill my", final=False)]
    await call.hear(SILENCE, 40)  # the commit silence: the turn ends on silence alone
    assert [e for e, _ in call.session.events] == [
        Utterance("I want to refill my", final=False),
        Utterance("I want to refill my", final=True),
    ]


async def test_no_words_heard_hand_the_session_nothing(call: Call) -> None:
    call.recognizer.words = "  "
    await call.hear(VOICE, 15)
    await call.hear(SILENCE, 60)
    await recognition_done(call)
    assert call.recognizer.heard and call.session.events == []


async def test_audio_in_pieces_short_of_a_frame_is_heard_the_same(call: Call) -> None:
    audio = VOICE * 15 + SILENCE * 20
    for start in range(0, len(audio), 70):  # 70 bytes: never a whole frame at once
        await call.voice.handle(AudioIn(audio[start : start + 70]))
    await until(lambda: bool(call.session.events), "the utterance")
    assert call.session.of(Utterance) == [Utterance("I need a refill.", final=True)]


async def test_silence_alone_is_never_recognized(call: Call) -> None:
    await call.hear(SILENCE, 100)
    await settle()
    assert call.recognizer.heard == [] and call.session.events == []


async def test_a_committed_utterance_is_not_lost_when_the_caller_speaks_again_before_its_words(
    call: Call,
) -> None:
    call.recognizer.gate = threading.Event()  # recognition slower than the commit silence
    call.recognizer.words = "I want to refill my"
    await call.hear(VOICE, 15)
    await call.hear(SILENCE, 60)  # paused, then committed: the words are not known yet
    await call.hear(VOICE, 5)  # the caller starts a new utterance
    call.recognizer.gate.set()
    await recognition_done(call)
    assert call.session.of(Utterance) == [Utterance("I want to refill my", final=True)]


# The agent's words


async def test_the_session_s_words_go_out_as_audio_and_a_mark_per_sentence(call: Call) -> None:
    await speak_greeting(call)
    await settle()
    first, second = (call.kit.phrasebook.get(s) for s in ("Hello there.", "How can I help?"))
    assert first and second and first != second
    assert call.sent == [AudioOut(first), Mark("1.1"), AudioOut(second), Mark("1.2")]
    assert call.session.events == []  # words out are no caller event


async def test_streamed_words_are_spoken_sentence_by_sentence_in_order(
    call: Call, synthesizer: FakeSynthesizer
) -> None:
    for token in ["Our ", "pharmacy ", "opens ", "at ", "nine, ", "and ", "closes ", "at "]:
        await call.voice.send(Delta(3, token))
    await call.voice.send(Delta(3, "five. Call us."))
    await call.voice.send(Done(3, "", "llm", "start", {}, {}))
    await until(lambda: len(call.sent_of(Mark)) == 3, "three pieces")
    assert synthesizer.calls == [
        "Our pharmacy opens at nine,",
        "and closes at five.",
        "Call us.",
    ]
    assert [e for e in call.sent if isinstance(e, Mark)] == [Mark("3.1"), Mark("3.2"), Mark("3.3")]


async def test_a_sentence_the_voice_cannot_say_is_skipped_and_the_rest_spoken(
    recognizer: FakeRecognizer,
) -> None:
    made = make_call(recognizer, FakeSynthesizer(fail_on=frozenset({"Hello there."})))
    try:
        await made.voice.send(Delta(1, GREETING))
        await made.voice.send(Done(1, GREETING, "quick", "start", {}, {}))
        await until(lambda: bool(made.sent_of(Mark)), "the second sentence")
        await settle()
        assert [type(e) for e in made.sent] == [AudioOut, Mark]
    finally:
        await made.voice.close()
        made.kit.close()


async def test_other_agent_events_go_on_to_the_frontend(call: Call) -> None:
    await call.voice.send(Listening(1, None))
    assert call.sent == [Listening(1, None)]


# Barge-in


async def test_caller_speech_over_the_agent_clears_its_audio_and_interrupts_with_what_was_heard(
    call: Call,
) -> None:
    await speak_greeting(call)
    await call.voice.handle(Played("1.1"))  # the first sentence has played, the second starts
    call.sent.clear()
    await call.hear(VOICE, 12)
    assert call.sent == [ClearAudio()]
    assert call.session.of(Interrupt) == [Interrupt("Hello there.")]


async def test_a_barge_in_hears_the_share_of_the_playing_sentence_its_time_covers(
    call: Call,
) -> None:
    await speak_greeting(call)
    await call.voice.handle(Played("1.1"))
    second = call.kit.phrasebook.get("How can I help?") or b""
    call.clock.advance(0.6 * len(second) / mulaw.SAMPLE_RATE)  # 60% of it played
    await call.hear(VOICE, 12)
    assert call.session.of(Interrupt) == [Interrupt("Hello there. How can")]  # 2 of 4 words


async def test_the_barged_in_turn_s_words_still_arriving_are_not_spoken(
    call: Call, synthesizer: FakeSynthesizer
) -> None:
    await call.voice.send(Delta(2, "Our pharmacy is on Maple Street. "))
    await until(lambda: bool(call.sent_of(Mark)), "the first sentence")
    await call.hear(VOICE, 12)
    assert call.session.of(Interrupt) == [Interrupt("")]  # nothing had played yet
    await call.voice.send(Delta(2, "It opens at nine. "))
    await call.voice.send(Done(2, "", "llm", "start", {}, {}))
    await settle()
    assert synthesizer.calls == ["Our pharmacy is on Maple Street."]
    assert [type(e) for e in call.sent] == [AudioOut, Mark, ClearAudio]


async def test_a_cough_over_the_agent_does_not_cut_it_off(call: Call) -> None:
    await speak_greeting(call)
    call.sent.clear()
    await call.hear(SILENCE, 10)
    await call.hear(VOICE, 3)
    await call.hear(SILENCE, 20)
    await settle()
    assert call.sent == [] and call.session.events == []


async def test_the_echo_of_the_agent_s_loud_audio_is_not_taken_for_the_caller(
    recognizer: FakeRecognizer,
) -> None:
    made = make_call(recognizer, FakeSynthesizer(amplitude=30000))
    try:
        await speak_greeting(made)
        made.sent.clear()
        await made.hear(VOICE, 40)  # speech to the detector, but under a quarter of the agent's
        await settle()
        assert made.sent == [] and made.session.events == []
        await made.hear(voice_frame(amplitude=30000), 12)  # as loud as the agent: the caller
        assert made.sent == [ClearAudio()]
    finally:
        await made.voice.close()
        made.kit.close()


async def test_a_key_pressed_over_the_agent_interrupts_it_first(call: Call) -> None:
    await speak_greeting(call)
    call.sent.clear()
    await call.voice.handle(Dtmf("5"), received_at=1.0)
    assert call.sent == [ClearAudio()]
    assert call.session.events == [(Interrupt(""), None), (Dtmf("5"), 1.0)]


async def test_a_key_pressed_in_silence_only_goes_to_the_session(call: Call) -> None:
    await call.voice.handle(Dtmf("5"))
    assert call.sent == [] and call.session.events == [(Dtmf("5"), None)]


# The caller's silence


async def test_the_caller_s_silence_is_timed_from_the_end_of_the_agent_s_audio(call: Call) -> None:
    await speak_greeting(call)
    await call.voice.send(Listening(1, 0.0))  # a reminder at once, once the audio has played
    await call.voice.handle(Played("1.1"))
    await settle()
    assert call.session.of(CallerSilent) == []  # the second sentence still plays
    await call.voice.handle(Played("1.2"))
    await until(lambda: bool(call.session.of(CallerSilent)), "the reminder")
    assert call.session.of(CallerSilent) == [CallerSilent()]


# The end of the call


async def test_the_end_of_the_call_waits_for_the_last_words_to_be_played(call: Call) -> None:
    await speak_greeting(call)
    ending = asyncio.create_task(call.voice.send(Ended("goodbye")))
    try:
        await settle()
        assert not ending.done() and Ended("goodbye") not in call.sent
        await call.voice.handle(Played("1.2"))  # the last mark: everything has played
        await until(ending.done, "the end sent")
        assert call.sent[-1] == Ended("goodbye")
    finally:
        ending.cancel()


async def test_the_end_of_a_silent_call_goes_at_once(call: Call) -> None:
    await call.voice.send(Ended("caller_hangup"))
    assert call.sent == [Ended("caller_hangup")]


# After a review: the silence timer, stale answers, a hang-up


async def test_no_reminder_fires_while_the_agent_talks_again_after_a_mark(call: Call) -> None:
    await speak_greeting(call)
    await call.voice.send(Listening(1, 0.05))
    filler = "One moment, let me check that."
    await call.voice.send(Delta(2, filler))  # the next turn talks
    await call.voice.send(Done(2, filler, "llm", "answer", {}, {}))
    await until(lambda: len(call.sent_of(Mark)) == 3, "the filler sent")
    await call.voice.handle(Played("1.2"))  # the greeting's last mark comes back
    await asyncio.sleep(0.2)
    assert call.session.of(CallerSilent) == []


async def test_an_utterance_that_brings_no_words_times_the_silence_again(
    call: Call, recognizer: FakeRecognizer
) -> None:
    await call.voice.send(Listening(0, 0.05))
    recognizer.words = ""  # a cough: speech to the detector, no words to the recognizer
    await call.hear(VOICE, 15)
    await call.hear(SILENCE, 60)  # past the commit silence
    await recognition_done(call)
    await until(lambda: bool(call.session.of(CallerSilent)), "the reminder")
    assert call.session.of(Utterance) == []


async def test_a_caller_s_hang_up_drops_the_agent_s_audio_at_once(call: Call) -> None:
    await speak_greeting(call)
    await asyncio.wait_for(call.voice.send(Ended("caller_hangup")), 1.0)
    assert call.sent[-1] == Ended("caller_hangup")
