"""Twilio ConversationRelay (`/twilio/relay`): Twilio does speech-to-text and text-to-speech and
exchanges text frames with the service (../shared/PROTOCOLS.md; docs/frontends.md).

Twilio's frames in: `setup` starts the call (its `customParameters`, caller and callee reach the
flow as metadata), `prompt` (`last:false` partials, cumulative; `last:true` the final),
`interrupt` (with what the caller heard), `dtmf`, `error` (Twilio reporting a frame of ours it
refused: logged). Out: `text` tokens with `last`, `end` with `handoffData` for a transfer or a
hang-up, `sendDigits`. Twilio has no error frame for the server to send: a bad frame of Twilio's
is logged and the call goes on.
"""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import urlencode
from xml.sax.saxutils import escape

from pydantic import Field

from voice_agent.errors import ProtocolError
from voice_agent.events import (
    ActionEvent,
    AgentEvent,
    CallerEvent,
    CallStart,
    Delta,
    Done,
    Dtmf,
    Ended,
    ErrorEvent,
    Interrupt,
    Utterance,
)
from voice_agent.frontends.codec import Inbound, Outbound, StartedByFrame
from voice_agent.frontends.frames import DtmfDigit, SpokenText, dumps, load_frame, parse_frame
from voice_agent.frontends.frames import Frame as _Frame
from voice_agent.types import HangUp, SendDigits, Transfer

log = logging.getLogger(__name__)


class _Setup(_Frame):
    callSid: str = Field(min_length=1, max_length=128)
    sessionId: str | None = None
    from_: str | None = Field(default=None, alias="from")
    to: str | None = None
    direction: str | None = None
    customParameters: dict[str, Any] = Field(default_factory=dict)


class _Prompt(_Frame):
    voicePrompt: SpokenText
    last: bool = True  # pydantic also takes "true" / "false" as text
    lang: str | None = None


class _Interrupt(_Frame):
    utteranceUntilInterrupt: SpokenText | None = None
    durationUntilInterruptMs: float | None = None  # Twilio has sent it as a string


class _Dtmf(_Frame):
    digit: DtmfDigit


class _Error(_Frame):
    description: str = ""


_FRAMES: dict[str, type[_Frame]] = {
    "setup": _Setup,
    "prompt": _Prompt,
    "interrupt": _Interrupt,
    "dtmf": _Dtmf,
    "error": _Error,
}


def decode(raw: str, max_utterance_chars: int) -> CallerEvent | None:
    """One Twilio frame to one event, or None for a frame that needs no action."""
    kind, data = load_frame(raw)
    frame = parse_frame(_FRAMES, kind, data, "unknown ConversationRelay frame")
    if isinstance(frame, _Setup):
        metadata = {k: v for k, v in frame.customParameters.items()}
        metadata.update({"from": frame.from_, "to": frame.to, "direction": frame.direction})
        flow = metadata.pop("flow", None)
        return CallStart(
            call_id=frame.callSid,
            flow=str(flow) if flow else None,
            metadata={k: v for k, v in metadata.items() if v},
        )
    if isinstance(frame, _Prompt):
        if len(frame.voicePrompt) > max_utterance_chars:
            raise ProtocolError("utterance_too_long", "prompt: voicePrompt is too long")
        return Utterance(text=frame.voicePrompt, final=frame.last)
    if isinstance(frame, _Interrupt):
        return Interrupt(heard=frame.utteranceUntilInterrupt or "")
    if isinstance(frame, _Dtmf):
        return Dtmf(digit=frame.digit)
    assert isinstance(frame, _Error)
    log.warning("Twilio refused a frame: %s", frame.description)
    return None


def encode(event: AgentEvent) -> list[dict[str, Any]]:
    """One event to the frames Twilio should get (often none)."""
    if isinstance(event, Delta):
        return [{"type": "text", "token": event.text, "last": False}]
    if isinstance(event, Done):
        return [{"type": "text", "token": "", "last": True}]
    if isinstance(event, ActionEvent):
        action = event.action
        if isinstance(action, SendDigits):
            return [{"type": "sendDigits", "digits": action.digits}]
        handoff: dict[str, Any] = {"reason": "hangup"}
        if isinstance(action, Transfer):
            handoff = (
                {"reason": "transfer"}
                if action.to is None
                else {"reason": "transfer", "to": action.to}
            )
        assert isinstance(action, Transfer | HangUp)
        return [{"type": "end", "handoffData": json.dumps(handoff)}]
    if isinstance(event, Ended):
        if event.reason in ("transfer", "agent_hangup"):
            return []  # the action's `end` frame already handed the call back
        return [{"type": "end", "handoffData": json.dumps({"reason": event.reason})}]
    if isinstance(event, ErrorEvent):
        log.warning("ConversationRelay call: %s (%s)", event.message, event.code)
    return []  # Ready and errors have no ConversationRelay frame


def twiml(base_url: str, token: str | None = None) -> str:
    """The TwiML that connects a call to this service's relay socket (a number's voice URL
    answers with it); `base_url` is the service's own, as the request reached it, and `token`
    the API key the voice URL carried, passed on to the relay's URL."""
    base = base_url.rstrip("/")
    relay = "wss" + base.removeprefix("https").removeprefix("http") + "/twilio/relay"
    if token:
        relay = escape(f"{relay}?{urlencode({'token': token})}", {'"': "&quot;"})
    return (
        '<?xml version="1.0" encoding="UTF-8"?><Response><Connect>'
        f'<ConversationRelay url="{relay}" interruptible="true" '
        'welcomeGreeting="" /></Connect></Response>'
    )


class TwilioRelayCodec(StartedByFrame):
    """ConversationRelay for one call: `setup` starts it, a bad frame is logged (Twilio has no
    error frame to receive), and the socket closes once the call has ended."""

    def __init__(self, max_utterance_chars: int) -> None:
        self._max_utterance_chars = max_utterance_chars

    def decode(self, raw: str, turn_id: int) -> Inbound:
        event = decode(raw, self._max_utterance_chars)
        return Inbound(() if event is None else (event,))

    def encode(self, event: AgentEvent) -> Outbound:
        frames = tuple(dumps(frame) for frame in encode(event))
        return Outbound(frames, close=isinstance(event, Ended))
