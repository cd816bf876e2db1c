"""A graceful stop of a real `voice-agent serve` process with 50 calls mid-answer: SIGTERM turns
/ready false and refuses new calls (1013), every answer in progress is finished, not cut; the
calls still open at VOICE_AGENT_DRAIN_TIMEOUT_S hear the goodbye and are closed with 1001; the
process exits 0."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
from typing import Any

import httpx
import pytest
import websockets

from ..conftest import serve
from ..fakes import scaled
from ..openai_server import Behaviour, openai_compatible_app

pytestmark = pytest.mark.model

CALLS = 50
TOKENS = [f"word{n} " for n in range(12)] + ["done."]
GOODBYE = "We are restarting, goodbye."


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def until_ready(url: str, process: asyncio.subprocess.Process) -> None:
    async with httpx.AsyncClient(base_url=url) as http:
        for _ in range(int(scaled(240) / 0.25)):
            if process.returncode is not None:
                raise AssertionError(f"serve exited with {process.returncode} before it was ready")
            try:
                if (await http.get("/ready")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.25)
    raise AssertionError("serve never became ready")


async def frames_until(ws: Any, kind: str) -> list[dict[str, Any]]:
    seen = []
    while True:
        frame = json.loads(await asyncio.wait_for(ws.recv(), scaled(60)))
        seen.append(frame)
        if frame["type"] == kind:
            return seen


async def test_sigterm_drains_fifty_calls_mid_answer_and_exits_0() -> None:
    behaviour = Behaviour(tokens=TOKENS, token_s=0.15)
    async with serve(openai_compatible_app(behaviour)) as backend:
        port = free_port()
        env = {
            **os.environ,
            "HF_HUB_OFFLINE": "1",
            "VOICE_AGENT_LLM_BACKEND": "openai",
            "OPENAI_BASE_URL": backend + "/v1",
            "OPENAI_API_KEY": "sk-test",
            "VOICE_AGENT_LLM_MODEL": "test-model",
            "VOICE_AGENT_DEFAULT_FLOW": "qa",
            "LATENCY_OPTIMIZATION_MODE": "disabled",
            "VOICE_AGENT_RESPONSE_CACHE": "false",
            "VOICE_AGENT_FIRST_TOKEN_BUDGET_S": "20",
            "VOICE_AGENT_LLM_TIMEOUT_S": "60",
            "VOICE_AGENT_LLM_STALL_TIMEOUT_S": "30",
            "VOICE_AGENT_DRAIN_TIMEOUT_S": str(scaled(6)),
            "VOICE_AGENT_DRAIN_GOODBYE": GOODBYE,
            "VOICE_AGENT_LOG_LEVEL": "warning",
        }
        command = [sys.executable, "-m", "voice_agent", "serve", "--port", str(port)]
        process = await asyncio.create_subprocess_exec(*command, env=env)
        url = f"http://127.0.0.1:{port}"
        try:
            await until_ready(url, process)
            calls = [
                await websockets.connect(f"ws://127.0.0.1:{port}/v1/calls") for _ in range(CALLS)
            ]
            for ws in calls:
                await ws.send(json.dumps({"type": "call.start"}))
                await frames_until(ws, "call.ready")
                await ws.send(json.dumps({"type": "user.utterance", "text": "Do you deliver?"}))
            for ws in calls:  # every answer has started streaming
                first = await frames_until(ws, "agent.delta")
                assert first[-1]["text"]
            process.send_signal(signal.SIGTERM)
            await asyncio.sleep(0.3)
            async with httpx.AsyncClient(base_url=url) as http:
                ready = await http.get("/ready")
            async with websockets.connect(f"ws://127.0.0.1:{port}/v1/calls") as late:
                with pytest.raises(websockets.ConnectionClosed) as refused:
                    await asyncio.wait_for(late.recv(), scaled(10))
            answers = [await frames_until(ws, "agent.done") for ws in calls]
            endings = [await frames_until(ws, "call.ended") for ws in calls]
            codes = []
            for ws in calls:
                with pytest.raises(websockets.ConnectionClosed) as closed:
                    await asyncio.wait_for(ws.recv(), scaled(10))
                codes.append(closed.value.rcvd.code if closed.value.rcvd else None)
            exit_code = await asyncio.wait_for(process.wait(), scaled(30))
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
    assert ready.status_code == 503
    assert refused.value.rcvd is not None and refused.value.rcvd.code == 1013
    whole = "".join(TOKENS).strip()
    assert all(a[-1]["source"] == "llm" and a[-1]["text"] == whole for a in answers)
    goodbyes = [[f["text"] for f in e if f["type"] == "agent.delta"] for e in endings]
    assert all(g == [GOODBYE] for g in goodbyes)
    assert all(e[-1]["reason"] == "server_shutdown" for e in endings)
    assert codes == [1001] * CALLS
    assert exit_code == 0
