"""What the app keeps between requests, typed: the service, the chat and Retell calls that
outlive one request or socket, the calls on a socket now (a drain waits for them), the chat
turns in flight, and whether shutdown has begun. Socket calls and chat turns in flight share
the call limits."""

from __future__ import annotations

import asyncio
import os
import socket
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from starlette.requests import HTTPConnection

from voice_agent.server.access import AccessPolicy

if TYPE_CHECKING:
    from voice_agent.server.chat import ChatCalls
    from voice_agent.server.retell import RetellCalls
    from voice_agent.server.service import Service
    from voice_agent.server.sockets import SocketCall


@dataclass
class AppState:
    service: Service
    chat_calls: ChatCalls
    retell_calls: RetellCalls
    closing: bool = False  # draining or shutting down: /ready says no, new calls are refused
    calls: set[SocketCall] = field(default_factory=set)
    idle: asyncio.Event = field(default_factory=asyncio.Event)  # set while no call is on a socket
    max_calls: int = 0  # calls on sockets at once, in all and per key (0: no limit)
    max_calls_per_key: int = 0
    per_key: Counter[str] = field(default_factory=Counter)
    chat_turns: int = 0  # chat-completions requests being answered now
    # With Redis: the other processes' calls per key, for a per-key limit across the fleet.
    elsewhere: Callable[[str], int] = lambda key: 0
    # Told the number of open calls whenever it changes (the metrics' gauge).
    calls_changed: Callable[[int], None] = lambda count: None
    process: dict[str, object] = field(default_factory=dict)  # which process this is (/health)
    # The keys, as the access middleware holds them (the dashboard asks whether there are any).
    access: AccessPolicy = field(default_factory=AccessPolicy)

    def __post_init__(self) -> None:
        self.idle.set()

    @property
    def active_calls(self) -> int:
        return len(self.calls) + self.chat_turns

    @property
    def full(self) -> bool:
        return 0 < self.max_calls <= self.active_calls

    def refusal(self, key: str) -> str | None:
        """Why a new call with this key is refused now, or None."""
        if self.closing:
            return "the service is restarting; call again"
        if self.full:
            return f"the service is at its limit of {self.max_calls} calls; call again"
        if 0 < self.max_calls_per_key <= self.per_key[key] + self.elsewhere(key):
            return f"key {key!r} is at its limit of {self.max_calls_per_key} calls"
        return None

    def track(self, call: SocketCall) -> None:
        self.calls.add(call)
        self.per_key[call.key] += 1
        self.idle.clear()
        self.calls_changed(self.active_calls)

    def untrack(self, call: SocketCall) -> None:
        self.calls.discard(call)
        self._release(call.key)
        if not self.calls:
            self.idle.set()
        self.calls_changed(self.active_calls)

    def begin_chat_turn(self, key: str) -> None:
        self.chat_turns += 1
        self.per_key[key] += 1
        self.calls_changed(self.active_calls)

    def end_chat_turn(self, key: str) -> None:
        self.chat_turns -= 1
        self._release(key)
        self.calls_changed(self.active_calls)

    def _release(self, key: str) -> None:
        self.per_key[key] -= 1
        if self.per_key[key] <= 0:
            del self.per_key[key]


def process_identity(workers: int) -> dict[str, object]:
    """This process among the machine's (or pod's): the host name is the pod's in Kubernetes."""
    host, pid = socket.gethostname(), os.getpid()
    return {"name": f"{host}:{pid}", "host": host, "pid": pid, "workers": workers}


def app_state(connection: HTTPConnection) -> AppState:
    """The app's state, from a request or a WebSocket (both are HTTP connections)."""
    state: AppState = connection.app.state.voice_agent
    return state
