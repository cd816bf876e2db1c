"""What happens in a call, in the service's own terms. Frontend codecs turn vendor frames into
the caller-side events and the agent-side events into vendor frames; nothing else in the
service knows a vendor's field names."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from voice_agent.types import Action, Source

# Caller side (frontend to service)


@dataclass(frozen=True, slots=True)
class CallStart:
    call_id: str | None = None
    flow: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    resume: bool = False  # the frontend reconnected to a call in progress: do not greet again


@dataclass(frozen=True, slots=True)
class Utterance:
    text: str
    final: bool = True


@dataclass(frozen=True, slots=True)
class Interrupt:
    heard: str | None = None  # what the caller heard of the agent's turn; None when unknown


@dataclass(frozen=True, slots=True)
class Dtmf:
    digit: str


@dataclass(frozen=True, slots=True)
class CallEnd:
    reason: str = "caller_hangup"


@dataclass(frozen=True, slots=True)
class Transcript:
    """The conversation as the frontend heard it (roles "user" and "assistant"); it replaces
    the call's history. Frontends that keep the transcript themselves (Retell) send it."""

    turns: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class CallerSilent:
    """The frontend noticed the caller's silence and asks for a nudge (Retell's reminders);
    sessions configured with `frontend_reminders` keep no silence timer of their own."""


@dataclass(frozen=True, slots=True)
class AudioIn:
    """The caller's audio: 8 kHz mu-law, any whole number of 20 ms frames (Media Streams)."""

    audio: bytes


@dataclass(frozen=True, slots=True)
class Played:
    """The frontend has played the agent's audio up to the mark `name`."""

    name: str


CallerEvent = (
    CallStart
    | Utterance
    | Interrupt
    | Dtmf
    | CallEnd
    | Transcript
    | CallerSilent
    | AudioIn
    | Played
)

# Agent side (service to frontend)


@dataclass(frozen=True, slots=True)
class Ready:
    call_id: str
    state: str
    mode: str


@dataclass(frozen=True, slots=True)
class Delta:
    turn_id: int
    text: str


@dataclass(frozen=True, slots=True)
class Done:
    turn_id: int
    text: str
    source: Source
    state: str
    latency_ms: dict[str, float]
    detail: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ActionEvent:
    turn_id: int
    action: Action


@dataclass(frozen=True, slots=True)
class Listening:
    """The agent has finished what it had to say after turn `turn_id` (0: nothing said yet)
    and waits for the caller, for `silence_timeout_s` before a reminder (None: no reminder)."""

    turn_id: int
    silence_timeout_s: float | None = None


@dataclass(frozen=True, slots=True)
class Ended:
    reason: str


@dataclass(frozen=True, slots=True)
class ErrorEvent:
    code: str
    message: str


@dataclass(frozen=True, slots=True)
class AudioOut:
    """Agent audio to play: 8 kHz mu-law."""

    audio: bytes


@dataclass(frozen=True, slots=True)
class Mark:
    """Ask the frontend to say when the audio sent before this has been played."""

    name: str


@dataclass(frozen=True, slots=True)
class ClearAudio:
    """Drop the agent audio not yet played (the caller barged in)."""


AgentEvent = (
    Ready
    | Delta
    | Done
    | ActionEvent
    | Listening
    | Ended
    | ErrorEvent
    | AudioOut
    | Mark
    | ClearAudio
)
