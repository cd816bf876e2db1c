"""What the app keeps between requests, typed: the service, the chat and Retell calls that
outlive one request or socket, the number of live calls, and whether shutdown has begun."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from starlette.requests import HTTPConnection

if TYPE_CHECKING:
    from voice_agent.server.chat import ChatCalls
    from voice_agent.server.retell import RetellCalls
    from voice_agent.server.service import Service


@dataclass
class AppState:
    service: Service
    chat_calls: ChatCalls
    retell_calls: RetellCalls
    active_calls: int = 0
    closing: bool = False


def app_state(connection: HTTPConnection) -> AppState:
    """The app's state, from a request or a WebSocket (both are HTTP connections)."""
    state: AppState = connection.app.state.voice_agent
    return state
