"""Retell's custom LLM WebSocket (`/retell/llm/{call_id}`): Retell does speech-to-text, turn
taking and text-to-speech, and asks the service for each response by id
(../shared/PROTOCOLS.md; docs/frontends.md). Sans I/O: frames in, events and frames out.

Retell's frames in: `call_details` (the call's metadata, asked for in our config frame),
`ping_pong`, `update_only` (the live transcript), `response_required` and `reminder_required`
(answer under this `response_id`). Out: `config`, `response` frames streamed under the id that
asked, the last one `content_complete` with `end_call`, `transfer_number` or `digit_to_press`,
and `ping_pong`. Only the newest id counts: `Responses` drops whatever the agent still says for
an older one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from pydantic import Field

from voice_agent.errors import ProtocolError
from voice_agent.events import (
    ActionEvent,
    AgentEvent,
    CallerEvent,
    CallerSilent,
    CallStart,
    Delta,
    Ended,
    ErrorEvent,
    Interrupt,
    Listening,
    Transcript,
    Utterance,
)
from voice_agent.frontends.codec import NOTHING, Inbound, Outbound
from voice_agent.frontends.frames import Frame as _Frame
from voice_agent.frontends.frames import SpokenText, dumps, load_frame, parse_frame
from voice_agent.types import Action, HangUp, SendDigits, Transfer

log = logging.getLogger(__name__)

CONFIG = {"response_type": "config", "config": {"auto_reconnect": True, "call_details": True}}


class _Turn(_Frame):
    role: str
    content: SpokenText = ""


class _Call(_Frame):
    call_id: str | None = None
    agent_id: str | None = None
    from_number: str | None = None
    to_number: str | None = None
    direction: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    retell_llm_dynamic_variables: dict[str, Any] = Field(default_factory=dict)


class _CallDetails(_Frame):
    call: _Call = Field(default_factory=_Call)


class _Ping(_Frame):
    timestamp: int


class _Update(_Frame):
    transcript: list[_Turn] = Field(default_factory=list)
    turntaking: str | None = None


class _Request(_Frame):
    response_id: int = Field(ge=0)
    transcript: list[_Turn] = Field(default_factory=list)


_FRAMES: dict[str, type[_Frame]] = {
    "call_details": _CallDetails,
    "ping_pong": _Ping,
    "update_only": _Update,
    "response_required": _Request,
    "reminder_required": _Request,
}


@dataclass(frozen=True, slots=True)
class CallDetails:
    metadata: dict[str, Any]  # what reaches the flow: metadata, dynamic variables, numbers


@dataclass(frozen=True, slots=True)
class Ping:
    timestamp: int


@dataclass(frozen=True, slots=True)
class Update:
    events: tuple[CallerEvent, ...]


@dataclass(frozen=True, slots=True)
class ResponseRequest:
    response_id: int
    events: tuple[CallerEvent, ...]


RetellFrame = CallDetails | Ping | Update | ResponseRequest


def decode(raw: str, max_utterance_chars: int) -> RetellFrame:
    """One Retell frame; raises ProtocolError for anything that is not one."""
    kind, data = load_frame(raw, key="interaction_type")
    frame = parse_frame(_FRAMES, kind, data, "unknown Retell interaction_type")
    if isinstance(frame, _CallDetails):
        return CallDetails(_metadata(frame.call))
    if isinstance(frame, _Ping):
        return Ping(frame.timestamp)
    assert isinstance(frame, _Update | _Request)
    history, user = _split(frame.transcript, max_utterance_chars)
    if isinstance(frame, _Update):
        if user is None:
            return Update((Transcript(history),))
        if frame.turntaking == "user_turn":  # the caller is still speaking: a partial
            return Update((Transcript(history), Utterance(user, final=False)))
        return Update((Transcript((*history, ("user", user))),))
    assert isinstance(frame, _Request)
    if kind == "reminder_required":
        turns = history if user is None else (*history, ("user", user))
        return ResponseRequest(frame.response_id, (Transcript(turns), CallerSilent()))
    if user is None:
        # Nothing new from the caller: stop what was being said, answer nothing.
        return ResponseRequest(frame.response_id, (Interrupt(heard=None), Transcript(history)))
    return ResponseRequest(frame.response_id, (Transcript(history), Utterance(user)))


def _metadata(call: _Call) -> dict[str, Any]:
    values: dict[str, Any] = {**call.retell_llm_dynamic_variables, **call.metadata}
    numbers = {"from": call.from_number, "to": call.to_number, "direction": call.direction}
    values.update({k: v for k, v in numbers.items() if v})
    return values


def _split(
    transcript: list[_Turn], max_utterance_chars: int
) -> tuple[tuple[tuple[str, str], ...], str | None]:
    """The conversation before the caller's newest words, and those words (None when the
    transcript does not end with the caller)."""
    turns = tuple(
        ("assistant" if t.role == "agent" else "user", t.content)
        for t in transcript
        if t.role in ("agent", "user") and t.content.strip()
    )
    if not turns or turns[-1][0] != "user":
        return turns, None
    user = turns[-1][1].strip()
    if len(user) > max_utterance_chars:
        raise ProtocolError("utterance_too_long", "transcript: the caller's turn is too long")
    return turns[:-1], user


class Responses:
    """Which response the agent's events belong to, and the frames they become.

    `begin(response_id, first_turn)` is called before the session hears of the request:
    events of turns before `first_turn` belong to older responses and are dropped, so no
    content for a stale id ever leaves. A response ends with one `content_complete` frame
    carrying the turn's actions; after that nothing more is sent under its id."""

    def __init__(self) -> None:
        self.response_id = -1  # none yet: the greeting is 0
        self._first_turn = 0
        self._open = False
        self._final: dict[str, Any] = {}

    def begin(self, response_id: int, first_turn: int) -> bool:
        """Start answering `response_id`; False (and nothing changes) for an id not newer
        than the current one: Retell no longer waits for it."""
        if response_id <= self.response_id:
            return False
        self.response_id = response_id
        self._first_turn = first_turn
        self._open = True
        self._final = {}
        return True

    @property
    def first_turn(self) -> int:
        """The first session turn that belongs to the current response."""
        return self._first_turn

    def frame(self, content: str, complete: bool, **final: Any) -> dict[str, Any]:
        return {
            "response_type": "response",
            "response_id": self.response_id,
            "content": content,
            "content_complete": complete,
            **final,
        }

    def complete(self, **final: Any) -> list[dict[str, Any]]:
        """The response's last frame (none if it already ended)."""
        if not self._open:
            return []
        self._open = False
        return [self.frame("", True, **{**self._final, **final})]

    def encode(self, event: AgentEvent) -> list[dict[str, Any]]:
        if isinstance(event, Ended):
            ending: dict[str, Any] = {} if "transfer_number" in self._final else {"end_call": True}
            return self.complete(**ending)
        turn_id = getattr(event, "turn_id", None)
        if not self._open or turn_id is None or turn_id < self._first_turn:
            return []
        if isinstance(event, Delta):
            return [self.frame(event.text, False)] if event.text else []
        if isinstance(event, ActionEvent):
            self._final.update(_action_fields(event.action))
            return []
        if isinstance(event, Listening):
            return self.complete()
        return []  # Done is for telemetry; Retell learns of the end from content_complete


def _action_fields(action: Action) -> dict[str, Any]:
    if isinstance(action, Transfer):
        return {"transfer_number": action.to or ""}
    if isinstance(action, SendDigits):
        return {"digit_to_press": action.digits}
    assert isinstance(action, HangUp)
    return {"end_call": True}


class RetellCodec:
    """Retell's socket for one call. On open: the config frame, then a bounded wait for
    `call_details` so that the call's metadata reaches the flow before the greeting, which is
    response 0. Retell nudges a silent caller itself, has no error frame (a bad frame is
    logged), and hangs up after the final response: the socket is left to it for `linger_s`.
    `started`: a held session was reattached (a reconnect), so no start is owed."""

    frontend_reminders = True
    closes_on_failed_start = True
    audio = False

    def __init__(
        self,
        call_id: str,
        max_utterance_chars: int,
        details_wait_s: float,
        linger_s: float,
        resumed: bool = False,
        started: bool = False,
    ) -> None:
        self.call_id = call_id
        self.linger_s = linger_s
        self.responses = Responses()
        self._max_utterance_chars = max_utterance_chars
        self._details_wait_s = details_wait_s
        self._resumed = resumed
        self._start_owed = not started
        self._opening = True  # waiting for the call's details

    def opening(self) -> tuple[str, ...]:
        return (dumps(CONFIG),)

    def wait_s(self) -> float | None:
        return self._details_wait_s if self._opening else None

    def timed_out(self, turn_id: int) -> Inbound:
        return Inbound(self._start({}, turn_id)) if self._opening else NOTHING

    def decode(self, raw: str, turn_id: int) -> Inbound:
        if not self._opening:
            return self._take(decode(raw, self._max_utterance_chars), turn_id)
        try:
            frame = decode(raw, self._max_utterance_chars)
        except ProtocolError:
            return Inbound(self._start({}, turn_id), then=raw)  # logged when decoded again
        if isinstance(frame, CallDetails):
            return Inbound(self._start(dict(frame.metadata), turn_id))
        return Inbound(self._start({}, turn_id), then=raw)

    def _start(self, metadata: dict[str, Any], turn_id: int) -> tuple[CallerEvent, ...]:
        """The greeting answers response 0; a reattached session is not started again."""
        self._opening = False
        self.responses.begin(0, turn_id + 1)
        if not self._start_owed:
            return ()
        self._start_owed = False
        flow = metadata.pop("flow", None)
        start = CallStart(self.call_id, str(flow) if flow else None, metadata, self._resumed)
        return (start,)

    def _take(self, frame: RetellFrame, turn_id: int) -> Inbound:
        if isinstance(frame, Ping):
            return Inbound(
                replies=(dumps({"response_type": "ping_pong", "timestamp": frame.timestamp}),)
            )
        if isinstance(frame, CallDetails):
            log.debug("Retell call %s: call_details after the start; ignored", self.call_id)
            return NOTHING
        if isinstance(frame, Update):
            return Inbound(frame.events)
        if not self.responses.begin(frame.response_id, turn_id + 1):
            log.info("Retell call %s: stale response_id %d", self.call_id, frame.response_id)
            return NOTHING
        return Inbound(frame.events)

    def settled(self, turn_id: int, ended: bool) -> tuple[str, ...]:
        """A response that started no turn (nothing new from the caller) ends empty."""
        if turn_id < self.responses.first_turn and not ended:
            return tuple(dumps(frame) for frame in self.responses.complete())
        return ()

    def encode(self, event: AgentEvent) -> Outbound:
        if isinstance(event, ErrorEvent):
            log.warning("Retell call %s: %s (%s)", self.call_id, event.message, event.code)
            return Outbound()
        frames = tuple(dumps(frame) for frame in self.responses.encode(event))
        # The call ended with no response left to carry end_call: Retell hangs up on a 1000 close.
        return Outbound(frames, close=isinstance(event, Ended) and not frames)
