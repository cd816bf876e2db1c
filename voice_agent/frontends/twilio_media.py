"""Twilio Media Streams (`/twilio/media`): the call's raw audio both ways, 8 kHz mu-law in
base64, about 20 ms a frame (../shared/PROTOCOLS.md; docs/frontends.md). The service hears and
speaks itself (voice_agent/call/voice.py); this codec only turns frames into events and back.

In: `connected` (nothing to do), `start` (the call: its `callSid`, and `customParameters` to the
flow as metadata, `flow` among them), `media` (caller audio; only the inbound track), `dtmf`,
`mark` (Twilio has played our audio up to that mark), `stop` (the caller hung up). Out: `media`
(agent audio, one 20 ms frame each), `mark`, `clear` (drop audio not yet played). Twilio has no
error frame to receive: a bad frame of Twilio's is logged and the call goes on. The call ends by
closing the socket: Twilio then carries on with the TwiML after `<Connect>`."""

from __future__ import annotations

import base64
import binascii
import logging
from typing import Any
from xml.sax.saxutils import escape

from pydantic import Field

from voice_agent.audio.mulaw import FRAME_BYTES, SAMPLE_RATE
from voice_agent.errors import ProtocolError
from voice_agent.events import (
    ActionEvent,
    AgentEvent,
    AudioIn,
    AudioOut,
    CallEnd,
    CallerEvent,
    CallStart,
    ClearAudio,
    Dtmf,
    Ended,
    ErrorEvent,
    Mark,
    Played,
)
from voice_agent.frontends.codec import NOTHING, Inbound, Outbound, StartedByFrame
from voice_agent.frontends.frames import DtmfDigit, dumps, load_frame, parse_frame
from voice_agent.frontends.frames import Frame as _Frame
from voice_agent.types import SendDigits

log = logging.getLogger(__name__)

ENCODING = "audio/x-mulaw"


class _Format(_Frame):
    encoding: str = ENCODING
    sampleRate: int = SAMPLE_RATE
    channels: int = 1


class _StartBody(_Frame):
    callSid: str = Field(min_length=1, max_length=128)
    streamSid: str | None = None
    customParameters: dict[str, Any] = Field(default_factory=dict)
    mediaFormat: _Format = Field(default_factory=_Format)


class _Start(_Frame):
    streamSid: str = Field(min_length=1, max_length=128)
    start: _StartBody


class _DtmfBody(_Frame):
    digit: DtmfDigit


class _Dtmf(_Frame):
    dtmf: _DtmfBody


class _MarkBody(_Frame):
    name: str = Field(max_length=256)


class _Mark(_Frame):
    mark: _MarkBody


class _Stop(_Frame):
    pass


class _Connected(_Frame):
    pass


_FRAMES: dict[str, type[_Frame]] = {
    "connected": _Connected,
    "start": _Start,
    "dtmf": _Dtmf,
    "mark": _Mark,
    "stop": _Stop,
}


def _media(data: dict[str, Any]) -> AudioIn | None:
    """A `media` frame's audio (None for a track other than the caller's). Decoded without a
    model: fifty of them arrive every second of every call."""
    media = data.get("media")
    if not isinstance(media, dict) or not isinstance(media.get("payload"), str):
        raise ProtocolError("invalid_frame", "media: no payload")
    if media.get("track", "inbound") not in ("inbound", "inbound_track"):
        return None
    try:
        return AudioIn(base64.b64decode(media["payload"], validate=True))
    except (binascii.Error, ValueError) as exc:
        raise ProtocolError("invalid_frame", "media: the payload is not base64") from exc


def decode(raw: str) -> tuple[CallerEvent | None, str | None]:
    """One Twilio frame to an event (or None), and the stream's sid when the frame starts it."""
    kind, data = load_frame(raw, key="event")
    if kind == "media":
        return _media(data), None
    frame = parse_frame(_FRAMES, kind, data, "unknown Media Streams event")
    if isinstance(frame, _Start):
        fmt = frame.start.mediaFormat
        if (fmt.encoding, fmt.sampleRate, fmt.channels) != (ENCODING, SAMPLE_RATE, 1):
            raise ProtocolError(
                "unsupported_audio", f"start: audio must be {ENCODING} at {SAMPLE_RATE} Hz, mono"
            )
        metadata = {k: v for k, v in frame.start.customParameters.items()
                    if v and k != "token"}  # fmt: skip
        flow = metadata.pop("flow", None)
        start = CallStart(call_id=frame.start.callSid, flow=str(flow) if flow else None,
                          metadata=metadata)  # fmt: skip
        return start, frame.streamSid
    if isinstance(frame, _Dtmf):
        return Dtmf(frame.dtmf.digit), None
    if isinstance(frame, _Mark):
        return Played(frame.mark.name), None
    if isinstance(frame, _Stop):
        return CallEnd("caller_hangup"), None
    return None, None


def twiml(base_url: str, token: str | None = None) -> str:
    """The TwiML that connects a call to this service's media socket; `base_url` is the
    service's own as the request reached it, and `token` the API key the voice URL carried.
    Twilio takes no query string on a `<Stream>` URL: the key goes as a custom parameter,
    which Twilio hands back in the `start` frame."""
    base = base_url.rstrip("/")
    url = "wss" + base.removeprefix("https").removeprefix("http") + "/twilio/media"
    quote = {'"': "&quot;"}
    parameter = f'<Parameter name="token" value="{escape(token, quote)}" />' if token else ""
    return (
        '<?xml version="1.0" encoding="UTF-8"?><Response><Connect>'
        f'<Stream url="{escape(url, quote)}">{parameter}</Stream></Connect></Response>'
    )


def start_token(raw: str) -> tuple[bool, str | None]:
    """Whether the frame is the stream's `start`, and its `token` custom parameter."""
    try:
        kind, data = load_frame(raw, key="event")
    except ProtocolError:
        return False, None
    if kind != "start":
        return False, None
    start = data.get("start")
    parameters = start.get("customParameters") if isinstance(start, dict) else None
    token = parameters.get("token") if isinstance(parameters, dict) else None
    return True, token if isinstance(token, str) else None


class TwilioMediaCodec(StartedByFrame):
    """Media Streams for one call. The voice layer times the caller's silence (it knows when
    the agent's audio has been played), so the session keeps no silence timer."""

    frontend_reminders = True
    audio = True
    # An ending call's last words are played before the socket closes (the voice layer
    # waits for their marks, up to 30 s); the close comes with the Ended event.
    linger_s = 35.0

    def __init__(self, replay: tuple[str, ...] = ()) -> None:
        self.stream_sid = ""
        # Frames read before the call's socket loop ran (the start, read to check its key),
        # decoded first, at once.
        self._replay = list(replay)

    def wait_s(self) -> float | None:
        return 0.0 if self._replay else None

    def timed_out(self, turn_id: int) -> Inbound:
        return self.decode(self._replay.pop(0), turn_id) if self._replay else NOTHING

    def decode(self, raw: str, turn_id: int) -> Inbound:
        event, sid = decode(raw)  # a bad frame's ProtocolError: logged by `encode`
        if sid is not None:
            self.stream_sid = sid
        return NOTHING if event is None else Inbound((event,))

    def encode(self, event: AgentEvent) -> Outbound:
        sid = self.stream_sid
        if isinstance(event, AudioOut):
            audio = event.audio
            return Outbound(tuple(
                dumps({"event": "media", "streamSid": sid, "media": {
                    "payload": base64.b64encode(audio[i : i + FRAME_BYTES]).decode("ascii")}})
                for i in range(0, len(audio), FRAME_BYTES)
            ))  # fmt: skip
        if isinstance(event, Mark):
            return Outbound((dumps({"event": "mark", "streamSid": sid,
                                    "mark": {"name": event.name}}),))  # fmt: skip
        if isinstance(event, ClearAudio):
            return Outbound((dumps({"event": "clear", "streamSid": sid}),))
        if isinstance(event, ActionEvent) and isinstance(event.action, SendDigits):
            log.warning("Media Streams cannot send digits (%s): not sent", event.action.digits)
        if isinstance(event, ErrorEvent):
            log.warning("Media Streams call: %s (%s)", event.message, event.code)
        return Outbound(close=isinstance(event, Ended))
