"""The contract every WebSocket frontend's codec keeps. A codec is made for one call's socket:
frames in, caller events out; agent events in, frames out. The socket loop (server/sockets.py)
is the same for every frontend and knows no vendor's frames; everything a vendor needs beyond
speech (a config frame on open, pings, answering under a request id, how the socket ends) is
said through this contract."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from voice_agent.events import AgentEvent, CallerEvent


@dataclass(frozen=True, slots=True)
class Inbound:
    """What one frame from the frontend comes to: events for the call's session, and frames
    to send back at once (a ping's answer)."""

    events: tuple[CallerEvent, ...] = ()
    replies: tuple[str, ...] = ()
    # A frame that came before the call had started, decoded again once these events (the
    # start among them) have been handled.
    then: str | None = None


@dataclass(frozen=True, slots=True)
class Outbound:
    """What one agent event comes to: the frames to send, and whether the socket is then
    closed (1000) because the frontend learned all it needs of the call's end."""

    frames: tuple[str, ...] = ()
    close: bool = False


NOTHING = Inbound()


class Codec(Protocol):
    # The frontend nudges a silent caller itself (the session keeps no silence timer).
    frontend_reminders: bool
    # Once the call has ended, how long the socket stays open for the frontend to close it.
    linger_s: float
    # The frontend cannot start the call again: a start that fails closes the socket (1011).
    closes_on_failed_start: bool
    # The frontend sends and takes audio: the service hears and speaks (call/voice.py).
    audio: bool

    def opening(self) -> tuple[str, ...]:
        """Frames sent as soon as the socket is open."""
        ...

    def wait_s(self) -> float | None:
        """How long to wait for the next frame before `timed_out`; None: as long as it takes."""
        ...

    def timed_out(self, turn_id: int) -> Inbound:
        """No frame came within `wait_s`; `turn_id` is the session's newest turn."""
        ...

    def decode(self, raw: str, turn_id: int) -> Inbound:
        """One text frame; `turn_id` is the session's newest turn. Raises ProtocolError for a
        frame that is not one of the frontend's."""
        ...

    def settled(self, turn_id: int, ended: bool) -> tuple[str, ...]:
        """Frames owed once the session has taken a frame's events (a request that started no
        turn still needs its answer)."""
        ...

    def encode(self, event: AgentEvent) -> Outbound:
        """One agent event to the frames the frontend gets (often none)."""
        ...


class StartedByFrame:
    """The parts of the contract that a frontend starting the call with a frame of its own
    (native `call.start`, Twilio's `setup`) leaves at their plain values: nothing sent on
    open, no waiting, nothing owed after a frame, the socket closed as soon as the call ends.
    Its codec adds `decode` and `encode`."""

    frontend_reminders = False
    linger_s = 0.0
    closes_on_failed_start = False
    audio = False

    def opening(self) -> tuple[str, ...]:
        return ()

    def wait_s(self) -> float | None:
        return None

    def timed_out(self, turn_id: int) -> Inbound:
        return NOTHING

    def settled(self, turn_id: int, ended: bool) -> tuple[str, ...]:
        return ()
