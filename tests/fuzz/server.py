"""The service on a thread of its own (its own event loop), so that hypothesis can drive it
from plain synchronous tests; and a log handler that keeps every record the service logs at
ERROR or with a traceback."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any

import uvicorn

from voice_agent.rag.encoder import Encoder
from voice_agent.server.app import create_app
from voice_agent.server.build import build_service
from voice_agent.settings import load_settings

from ..fakes import FakeLLM, scaled


class Failures(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def described(self) -> list[str]:
        return [f"{r.name}: {r.getMessage()}" for r in self.records]


class ThreadedService:
    def __init__(self, encoder: Encoder, **overrides: Any) -> None:
        self._encoder = encoder
        self._overrides = overrides
        self._server: uvicorn.Server | None = None
        self._thread = threading.Thread(target=self._run, name="fuzzed-service", daemon=True)
        self.url = ""

    def _run(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        settings = load_settings(**self._overrides)
        service = build_service(settings, encoder=self._encoder, llm=FakeLLM())
        app = create_app(service=service)
        # No keepalive pings: they draw from the global `random` (websockets), which hypothesis
        # takes for a strategy using it when it happens, from this thread, mid-example.
        config = uvicorn.Config(
            app, host="127.0.0.1", port=0, log_level="warning", ws_ping_interval=None
        )
        self._server = uvicorn.Server(config)
        try:
            await self._server.serve()
        finally:
            await service.aclose()

    def start(self) -> None:
        self._thread.start()
        deadline = time.monotonic() + scaled(60)
        while self._server is None or not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the fuzzed service did not start")
            time.sleep(0.02)
        port = self._server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        self._thread.join(scaled(30))
