"""A way to drop a WebSocket's TCP connection at once. ASGI has no message for it (a close
frame waits behind every frame the client has not read), but a client that has stopped
reading must not hold the call open until its pings time out. uvicorn's WebSocket protocols
own the transport, and the raw `send` callable the server hands the app is their method."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from functools import partial

from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket

DROP = "drop_connection"


class ConnectionHandle:
    """ASGI middleware, outermost: puts the drop on a WebSocket scope's state while `send` is
    still the server's own (Starlette's inner layers wrap it)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            scope.setdefault("state", {})[DROP] = partial(_abort, send)
        await self.app(scope, receive, send)


def _abort(send: Send) -> bool:
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    if not isinstance(transport, asyncio.WriteTransport):
        return False
    transport.abort()
    return True


def drop_connection(ws: WebSocket) -> bool:
    """Abort the socket's connection; False where the server does not allow it (the call is
    closed all the same, and the client's own timeouts end the connection)."""
    drop: Callable[[], bool] | None = ws.scope.get("state", {}).get(DROP)
    return drop() if drop is not None else False
