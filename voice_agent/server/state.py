"""What the app keeps between requests, typed: the service, the chat and Retell calls that
outlive one request or socket, the calls on a socket now (a drain waits for them), and whether
shutdown has begun."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from starlette.requests import HTTPConnection

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
    active_calls: int = 0
    closing: bool = False  # draining or shutting down: /ready says no, new calls are refused
    calls: set[SocketCall] = field(default_factory=set)
    idle: asyncio.Event = field(default_factory=asyncio.Event)  # set while no call is on a socket

    def __post_init__(self) -> None:
        self.idle.set()

    def track(self, call: SocketCall) -> None:
        self.calls.add(call)
        self.active_calls += 1
        self.idle.clear()

    def untrack(self, call: SocketCall) -> None:
        self.calls.discard(call)
        self.active_calls -= 1
        if not self.calls:
            self.idle.set()


def app_state(connection: HTTPConnection) -> AppState:
    """The app's state, from a request or a WebSocket (both are HTTP connections)."""
    state: AppState = connection.app.state.voice_agent
    return state
