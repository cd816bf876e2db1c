from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
import websockets
from fastapi import FastAPI

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# No speech engines unless a test asks (the audio tests hand theirs in): most tests are of text
# calls, and the service processes they start inherit this.
os.environ.setdefault("VOICE_AGENT_SPEECH", "off")

from voice_agent.rag.encoder import Encoder, load_sentence_model
from voice_agent.server.app import create_app
from voice_agent.server.build import build_service
from voice_agent.server.loopback import on_loopback
from voice_agent.server.service import Service
from voice_agent.settings import Settings, load_settings
from voice_agent.types import LLMClient

from .fakes import FakeLLM, scaled
from .redis_server import redis_server  # noqa: F401 (a fixture, for every test that asks)


@pytest.fixture(scope="session")
def encoder() -> Encoder:
    """The bundled all-MiniLM-L6-v2, loaded once for the whole run."""
    return Encoder(load_sentence_model())


@pytest.fixture
def settings_factory() -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        return load_settings(**overrides)

    return make


@pytest.fixture
async def make_service(encoder: Encoder) -> AsyncIterator[Callable[..., Service]]:
    """A real service (demo knowledge base, real encoder) around the LLM a test chooses;
    closed after the test (its telemetry file and DogStatsD socket with it), the shared
    encoder and the test's LLM left open."""
    made: list[Service] = []

    def make(llm: LLMClient | None = None, **overrides: Any) -> Service:
        # The plain question-and-answer flow unless a test asks for another; the response
        # cache only where a test asks for it (it would answer repeated questions itself).
        overrides.setdefault("VOICE_AGENT_DEFAULT_FLOW", "qa")
        overrides.setdefault("VOICE_AGENT_RESPONSE_CACHE", False)
        settings = load_settings(**overrides)
        made.append(build_service(settings, encoder=encoder, llm=llm or FakeLLM()))
        return made[-1]

    yield make
    for service in made:
        await service.aclose()


@asynccontextmanager
async def serve(app: FastAPI) -> AsyncIterator[str]:
    """Run `app` with uvicorn on a free loopback port; yields its http:// base URL."""
    async with on_loopback(app, stop_timeout_s=scaled(10), ws_max_size=2**20) as url:
        yield url


@pytest.fixture
def running() -> Callable[[Service], Any]:
    """`async with running(service) as url:` serves the app for one test."""

    def start(service: Service) -> Any:
        return serve(create_app(service=service))

    return start


class CallClient:
    """A thin test client for the native protocol."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws

    async def send(self, frame: dict[str, Any] | str | bytes) -> None:
        await self.ws.send(frame if isinstance(frame, str | bytes) else json.dumps(frame))

    async def recv(self, wait_s: float = 10.0) -> dict[str, Any]:
        raw = await asyncio.wait_for(self.ws.recv(), timeout=scaled(wait_s))
        frame: dict[str, Any] = json.loads(raw)
        return frame

    async def until(self, kind: str, wait_s: float = 10.0) -> list[dict[str, Any]]:
        """Every frame up to and including the first of type `kind`."""
        frames = []
        while True:
            frame = await self.recv(wait_s)
            frames.append(frame)
            if frame["type"] == kind:
                return frames

    async def start(self, **fields: Any) -> dict[str, Any]:
        await self.send({"type": "call.start", **fields})
        return await self.recv()

    async def ask(self, text: str) -> list[dict[str, Any]]:
        await self.send({"type": "user.utterance", "text": text, "final": True})
        return await self.until("agent.done")


@asynccontextmanager
async def call(url: str) -> AsyncIterator[CallClient]:
    ws_url = url.replace("http://", "ws://") + "/v1/calls"
    async with websockets.connect(ws_url) as ws:
        yield CallClient(ws)
