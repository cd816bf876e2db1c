"""What happens in a call, in the service's own terms. Frontend codecs turn vendor frames into
the caller-side events and the agent-side events into vendor frames; nothing else in the
service knows a vendor's field names."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from voice_agent.types import Source

# Caller side (frontend to service)


@dataclass(frozen=True, slots=True)
class CallStart:
    call_id: str | None = None
    flow: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


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


CallerEvent = CallStart | Utterance | Interrupt | Dtmf | CallEnd

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
    action: str
    params: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Ended:
    reason: str


@dataclass(frozen=True, slots=True)
class ErrorEvent:
    code: str
    message: str


AgentEvent = Ready | Delta | Done | ActionEvent | Ended | ErrorEvent
