"""A client that stops reading: its send buffer stays bounded, no new work is started for it,
its socket is dropped within the send timeout of the stall, its call's memory is freed, and a
healthy call on the same process is answered throughout."""

from __future__ import annotations

import asyncio
import gc
import json
import socket
import weakref
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from websockets.client import ClientProtocol
from websockets.uri import parse_uri

from voice_agent.server.service import Service
from voice_agent.server.state import AppState

from ..conftest import call
from ..fakes import FakeLLM, scaled

HARD_S = 3.0  # the state's hard limit: the service's default VOICE_AGENT_LLM_TIMEOUT_S
BIG = ("Our store has a great many things to tell you about today " * 200,) * 10  # ~120 KB


class DeafClient:
    """A WebSocket client that writes and never reads: after the handshake nothing it is sent
    leaves the kernel's receive buffer, which is kept small."""

    def __init__(self, url: str) -> None:
        self.url = url.replace("http://", "ws://") + "/v1/calls"
        self.protocol = ClientProtocol(parse_uri(self.url))
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.setblocking(False)

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        where = urlsplit(self.url)
        await loop.sock_connect(self.sock, (where.hostname, where.port))
        self.protocol.send_request(self.protocol.connect())
        await self._flush()
        response = b""
        while b"\r\n\r\n" not in response:  # the 101, and nothing after it is ever read
            response += await loop.sock_recv(self.sock, 1)
        self.protocol.receive_data(response)
        assert self.protocol.handshake_exc is None, self.protocol.handshake_exc

    async def send(self, frame: dict[str, Any]) -> None:
        self.protocol.send_text(json.dumps(frame).encode())
        await self._flush()

    async def _flush(self) -> None:
        for data in self.protocol.data_to_send():
            await asyncio.get_running_loop().sock_sendall(self.sock, data)


def stalled_calls(state: AppState) -> list[Any]:
    return [c for c in state.calls if c.socket.backed_up]


def asked_by_deaf(llm: FakeLLM) -> int:
    return sum(1 for messages in llm.calls if "deaf question" in messages[-1].content)


async def test_a_client_that_stops_reading_is_dropped_and_no_other_call_slows(
    make_service: Callable[..., Service], served: Any
) -> None:
    llm = FakeLLM(tokens=BIG)
    send_timeout_s = scaled(1.0)
    service = make_service(
        llm,
        VOICE_AGENT_SEND_TIMEOUT_S=send_timeout_s,
        VOICE_AGENT_QUICK_RESPONSES=False,
        VOICE_AGENT_MAX_TURNS_PER_MINUTE=0,
        VOICE_AGENT_ANSWER_MAX_SENTENCES=20,
    )
    async with served(service) as (url, state), call(url) as healthy:
        await healthy.start()
        deaf = DeafClient(url)
        try:
            await watch(deaf, healthy, llm, state, send_timeout_s)
        finally:
            deaf.sock.close()


async def watch(
    deaf: DeafClient, healthy: Any, llm: FakeLLM, state: AppState, send_timeout_s: float
) -> None:
    loop = asyncio.get_running_loop()
    if True:
        await deaf.open()
        await deaf.send({"type": "call.start"})
        stalled_at = dropped_at = None
        asked_at_stall = 0
        held: weakref.ref[Any] | None = None
        answered = 0
        for n in range(2000):
            if stalled_at is None and (stalled := stalled_calls(state)):
                stalled_at, asked_at_stall = loop.time(), asked_by_deaf(llm)
                held = weakref.ref(stalled[0].session)
                del stalled
            try:
                await deaf.send({"type": "user.utterance", "text": f"deaf question {n}"})
            except OSError:  # reset: the service dropped the connection
                dropped_at = loop.time()
                break
            if n % 10 == 0:  # the healthy call is answered all along, within its hard limit
                asked = loop.time()
                done = (await healthy.ask(f"healthy question {n}"))[-1]
                assert loop.time() - asked <= HARD_S + scaled(0.1)
                assert done["text"].startswith("Our store") and done["source"] != "fallback"
                answered += 1
            await asyncio.sleep(0.02)
        assert stalled_at is not None and dropped_at is not None
        # Dropped within the send timeout of the stall (plus the loop's own pace).
        assert dropped_at - stalled_at <= send_timeout_s + scaled(1.5)
        # No new work for the stalled call: at most the turn that was already running.
        assert asked_by_deaf(llm) - asked_at_stall <= 1
        for _ in range(100):  # its session is untracked, closed and freed
            if not state.calls - {c for c in state.calls if c.session is not held()}:
                break
            await asyncio.sleep(0.01)
        assert len(state.calls) == 1  # the healthy call alone
        assert held is not None
        for _ in range(100):  # freed once the tasks that were closing it have finished
            gc.collect()
            if held() is None:
                break
            await asyncio.sleep(scaled(0.02))
        session = held()
        holders = [] if session is None else [type(r).__name__ for r in gc.get_referrers(session)]
        del session
        assert not holders, f"the dropped call's session is still held by {holders}"
        done = (await healthy.ask("healthy question after"))[-1]
        assert done["text"].startswith("Our store") and answered > 0
