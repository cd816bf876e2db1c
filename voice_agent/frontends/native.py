"""The native protocol at /v1/calls (docs/protocol.md): JSON text frames, one event each."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, ValidationError, field_validator

from voice_agent.errors import ProtocolError
from voice_agent.events import (
    ActionEvent,
    AgentEvent,
    CallEnd,
    CallerEvent,
    CallStart,
    Delta,
    Done,
    Dtmf,
    Ended,
    ErrorEvent,
    Interrupt,
    Listening,
    Ready,
    Utterance,
)
from voice_agent.frontends.codec import Inbound, Outbound, StartedByFrame
from voice_agent.frontends.frames import DtmfDigit, SpokenText, dumps, load_frame, parse_frame
from voice_agent.frontends.frames import Frame as _Frame
from voice_agent.types import Action, HangUp, SendDigits, Transfer


class _CallStart(_Frame):
    call_id: str | None = Field(default=None, min_length=1, max_length=128)
    flow: str | None = Field(default=None, min_length=1, max_length=128)
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("call_id", mode="before")
    @classmethod
    def _number_as_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


class _Utterance(_Frame):
    text: SpokenText
    final: bool = True


class _Interrupt(_Frame):
    heard: SpokenText | None = None


class _Dtmf(_Frame):
    digit: DtmfDigit


class _CallEnd(_Frame):
    reason: str = "caller_hangup"


_CLIENT_FRAMES: dict[str, type[_Frame]] = {
    "call.start": _CallStart,
    "user.utterance": _Utterance,
    "user.interrupt": _Interrupt,
    "user.dtmf": _Dtmf,
    "call.end": _CallEnd,
}


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "frame"
        msg = "is required" if err["type"] == "missing" else err["msg"]
        parts.append(f"{where} {msg}" if err["type"] == "missing" else f"{where}: {msg}")
    return "; ".join(parts)


def decode(raw: str, max_utterance_chars: int) -> CallerEvent:
    """One client frame to one event; raises ProtocolError with a code for the error frame."""
    kind, data = load_frame(raw)
    if kind not in _CLIENT_FRAMES:
        known = ", ".join(sorted(_CLIENT_FRAMES))
        raise ProtocolError("unknown_type", f"unknown frame type {kind!r}; expected one of {known}")
    frame = parse_frame(_CLIENT_FRAMES, kind, data, "unknown frame type", _describe)
    return _to_event(frame, max_utterance_chars)


def _to_event(frame: BaseModel, max_utterance_chars: int) -> CallerEvent:
    if isinstance(frame, _CallStart):
        return CallStart(call_id=frame.call_id, flow=frame.flow, metadata=frame.metadata)
    if isinstance(frame, _Utterance):
        if len(frame.text) > max_utterance_chars:
            raise ProtocolError(
                "utterance_too_long",
                f"user.utterance: text has {len(frame.text)} characters; "
                f"the limit is {max_utterance_chars}",
            )
        return Utterance(text=frame.text, final=frame.final)
    if isinstance(frame, _Interrupt):
        return Interrupt(heard=frame.heard)
    if isinstance(frame, _Dtmf):
        return Dtmf(digit=frame.digit)
    if isinstance(frame, _CallEnd):
        return CallEnd(reason=frame.reason)
    raise AssertionError(f"no event for {type(frame).__name__}")


def encode(event: AgentEvent) -> dict[str, Any] | None:
    """One event to one server frame (a JSON object), or None for an event the native
    protocol does not carry (`agent.done` already tells the client the agent is done)."""
    if isinstance(event, Listening):
        return None
    if isinstance(event, Delta):
        return {"type": "agent.delta", "turn_id": event.turn_id, "text": event.text}
    if isinstance(event, Done):
        return {
            "type": "agent.done",
            "turn_id": event.turn_id,
            "text": event.text,
            "source": event.source,
            "state": event.state,
            "latency_ms": event.latency_ms,
            "detail": event.detail,
        }
    if isinstance(event, Ready):
        return {
            "type": "call.ready",
            "call_id": event.call_id,
            "state": event.state,
            "mode": event.mode,
        }
    if isinstance(event, ActionEvent):
        return {"type": "agent.action", "turn_id": event.turn_id, **_action(event.action)}
    if isinstance(event, Ended):
        return {"type": "call.ended", "reason": event.reason}
    if isinstance(event, ErrorEvent):
        return {"type": "error", "code": event.code, "message": event.message}
    raise AssertionError(f"no frame for {type(event).__name__}")


def _action(action: Action) -> dict[str, Any]:
    if isinstance(action, Transfer):
        return (
            {"action": "transfer"} if action.to is None else {"action": "transfer", "to": action.to}
        )
    if isinstance(action, SendDigits):
        return {"action": "dtmf", "digits": action.digits}
    assert isinstance(action, HangUp)
    return {"action": "hangup"}


class NativeCodec(StartedByFrame):
    """The native protocol for one call: the client starts the call with `call.start`, gets an
    `error` frame for a frame the service cannot act on, and the socket closes after
    `call.ended`."""

    def __init__(self, max_utterance_chars: int) -> None:
        self._max_utterance_chars = max_utterance_chars

    def decode(self, raw: str, turn_id: int) -> Inbound:
        return Inbound((decode(raw, self._max_utterance_chars),))

    def encode(self, event: AgentEvent) -> Outbound:
        frame = encode(event)
        frames = () if frame is None else (dumps(frame),)
        return Outbound(frames, close=isinstance(event, Ended))
