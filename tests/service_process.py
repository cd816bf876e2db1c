"""`voice-agent serve` in a process of its own, answering through the openai backend pointed at
a test's OpenAI-compatible stub, with Redis shared between processes: for the tests of several
processes (the shared cache, the balancer, the workers); and callers on its sockets."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import websockets

from .fakes import scaled
from .redis_server import free_port


class ServiceProcess:
    def __init__(self, process: asyncio.subprocess.Process, url: str, log_path: Path) -> None:
        self.process = process
        self.url = url
        self.log_path = log_path

    def sigterm(self) -> None:
        self.process.send_signal(signal.SIGTERM)

    async def exited(self, wait_s: float = 30) -> int:
        return await asyncio.wait_for(self.process.wait(), timeout=scaled(wait_s))


@asynccontextmanager
async def service_process(
    tmp: Path, redis_url: str, llm_url: str, **env: str
) -> AsyncIterator[ServiceProcess]:
    """Yields the process once it is healthy; SIGTERM (then SIGKILL) when done with it."""
    port = free_port()
    environment = {
        **os.environ,
        "VOICE_AGENT_PORT": str(port),
        "VOICE_AGENT_REDIS_URL": redis_url,
        "VOICE_AGENT_LLM_BACKEND": "openai",
        "OPENAI_BASE_URL": llm_url + "/v1",
        "OPENAI_API_KEY": "sk-test",
        "VOICE_AGENT_LLM_MODEL": "test-model",
        "VOICE_AGENT_DEFAULT_FLOW": "qa",
        "VOICE_AGENT_CACHE_WARM_FAQ": "false",
        "VOICE_AGENT_LOG_LEVEL": "WARNING",
        "VOICE_AGENT_AUDIT_LOG": str(tmp / f"audit-{port}.jsonl"),
        **env,
    }
    log_path = tmp / f"serve-{port}.log"
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "voice_agent", "serve", env=environment, stdout=log, stderr=log
        )
        served = ServiceProcess(process, f"http://127.0.0.1:{port}", log_path)
        try:
            await until_healthy(served)
            yield served
        finally:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
                try:
                    await asyncio.wait_for(process.wait(), timeout=scaled(40))
                except TimeoutError:
                    process.kill()
                    await process.wait()


async def until_healthy(served: ServiceProcess) -> None:
    async with httpx.AsyncClient(base_url=served.url) as http:
        deadline = time.monotonic() + scaled(120)
        while True:
            if served.process.returncode is not None:
                raise RuntimeError(f"serve exited: {served.log_path.read_text()}")
            try:
                if (await http.get("/ready")).status_code == 200:  # open, even behind keys
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("serve did not become healthy")
            await asyncio.sleep(0.2)


class Caller:
    def __init__(self, ws: Any) -> None:
        self.ws = ws

    async def start(self) -> dict[str, Any]:
        await self.ws.send(json.dumps({"type": "call.start"}))
        frame: dict[str, Any] = json.loads(await asyncio.wait_for(self.ws.recv(), scaled(10)))
        return frame

    async def until_ended(self) -> dict[str, Any]:
        """Frames until the call ends (the service's goodbye comes before)."""
        while True:
            frame: dict[str, Any] = json.loads(await asyncio.wait_for(self.ws.recv(), scaled(40)))
            if frame["type"] == "call.ended":
                return frame

    async def ask(self, text: str) -> dict[str, Any]:
        await self.ws.send(json.dumps({"type": "user.utterance", "text": text}))
        while True:
            frame: dict[str, Any] = json.loads(await asyncio.wait_for(self.ws.recv(), scaled(20)))
            if frame["type"] == "agent.done":
                return frame


@asynccontextmanager
async def callers(url: str, count: int, stack: AsyncExitStack) -> AsyncIterator[list[Caller]]:
    ws_url = url.replace("http://", "ws://") + "/v1/calls"
    opened = [Caller(await stack.enter_async_context(websockets.connect(ws_url)))]
    for _ in range(count - 1):
        opened.append(Caller(await stack.enter_async_context(websockets.connect(ws_url))))
    yield opened
