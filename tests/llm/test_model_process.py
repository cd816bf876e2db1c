"""The bundled model runs in its own supervised process: the real `voice-agent serve` is
started as a process of its own, and its model process is killed in the middle of an answer.
One turn gets the fallback line; templates answer while the model is down; the model comes
back; the service never exits. A model file that cannot be served stops start-up with one
clear line."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from voice_agent.settings import load_settings

from ..conftest import CallClient, call
from ..fakes import scaled

pytestmark = pytest.mark.model

HARD_LIMIT_S = 3.0  # VOICE_AGENT_LLM_TIMEOUT_S below; the qa flow's state sets none of its own
RESTART_BACKOFF_S = 2.0
LONG_QUESTION = "Tell me everything about your pharmacy: hours, delivery, insurance and vaccines."


@dataclass
class Running:
    proc: subprocess.Popen[bytes]
    url: str
    log: Path

    def health(self) -> dict[str, Any]:
        body: dict[str, Any] = httpx.get(self.url + "/health", timeout=5).json()
        return body

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def service_env(**overrides: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        HF_HUB_OFFLINE="1",
        VOICE_AGENT_AUDIT_LOG="",
        VOICE_AGENT_DEFAULT_FLOW="qa",
        VOICE_AGENT_RESPONSE_CACHE="false",
        VOICE_AGENT_LLM_BACKEND="local",
    )
    env.update(overrides)
    return env


# The qa flow, with no silence reminder while the test waits for a restart.
PATIENT_FLOW = """
name: patient_qa
start: answer
defaults: {silence_timeout_s: 600}
states:
  answer:
    task: "Answer the caller's questions from the knowledge base."
    on: {goodbye: bye}
  bye: {say: "Goodbye!", action: hangup}
"""


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    folder = tmp_path_factory.mktemp("service")
    log = folder / "serve.log"
    (folder / "patient_qa.yaml").write_text(PATIENT_FLOW)
    port = free_port()
    env = service_env(
        VOICE_AGENT_PORT=str(port),
        VOICE_AGENT_FLOW_PATH=str(folder / "patient_qa.yaml"),
        VOICE_AGENT_DEFAULT_FLOW="patient_qa",
        VOICE_AGENT_LLM_TIMEOUT_S=str(HARD_LIMIT_S),
        VOICE_AGENT_FIRST_TOKEN_BUDGET_S="2.5",
        VOICE_AGENT_LLM_MAX_TOKENS="300",
        VOICE_AGENT_ANSWER_MAX_SENTENCES="10",
        VOICE_AGENT_LLM_RESTART_BACKOFF_S=str(RESTART_BACKOFF_S),
        # The breaker must not open on the two kills: this is about the process, not it.
        VOICE_AGENT_BREAKER_FAILURES="10",
    )
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "voice_agent", "serve"], env=env, stdout=out, stderr=out
        )
    running = Running(proc, f"http://127.0.0.1:{port}", log)
    deadline = time.monotonic() + scaled(180)
    try:
        while True:
            assert proc.poll() is None, running.log_text()
            try:
                if httpx.get(running.url + "/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the service did not become ready"
            time.sleep(0.2)
        yield running
    finally:
        proc.terminate()
        proc.wait(timeout=scaled(30))


async def model_ready(service: Running) -> dict[str, Any]:
    deadline = time.monotonic() + scaled(60)
    while True:
        process = (await asyncio.to_thread(service.health))["llm_process"]
        if process["state"] == "ready":
            return dict(process)
        assert time.monotonic() < deadline, process
        await asyncio.sleep(0.1)


async def model_down(service: Running, wait_s: float = 5) -> None:
    """Until the supervisor has seen the model process go (an exit within 50 ms, a hang
    within a few health checks)."""
    deadline = time.monotonic() + scaled(wait_s)
    while (await asyncio.to_thread(service.health))["llm_process"]["state"] == "ready":
        assert time.monotonic() < deadline, "the supervisor did not see the model process go"
        await asyncio.sleep(0.02)


async def kill_mid_answer(client: CallClient, pid: int, sig: signal.Signals) -> tuple[Any, float]:
    """Ask a question with a long answer, send `sig` to the model process at the first words;
    the `agent.done` frame and the seconds from the question to it."""
    sent = time.monotonic()
    await client.send({"type": "user.utterance", "text": LONG_QUESTION, "final": True})
    killed = False
    while True:
        frame = await client.recv(wait_s=30)
        if frame["type"] == "agent.delta" and not killed:
            os.kill(pid, sig)
            killed = True
        if frame["type"] == "agent.done":
            assert killed, f"the answer ended before any word: {frame}"
            return frame, time.monotonic() - sent


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGSEGV], ids=["SIGKILL", "SIGSEGV"])
async def test_a_model_killed_mid_answer_costs_that_turn_only(
    service: Running, sig: signal.Signals
) -> None:
    fallback = load_settings().fallback_text
    async with call(service.url) as client:
        await client.start(call_id=f"kill-{sig.name}")
        first = await model_ready(service)
        done, took_s = await kill_mid_answer(client, first["pid"], sig)
        assert done["source"] == "fallback", done
        assert done["text"].endswith(fallback), done
        # The turn ends with the fallback line inside the state's hard limit (+100 ms).
        assert took_s <= HARD_LIMIT_S + 0.1, took_s

        # While the model is down, templates still answer in the same call.
        await model_down(service)
        small_talk = (await client.ask("Thanks a lot"))[-1]
        assert small_talk["source"] == "quick", small_talk
        still_down = (await asyncio.to_thread(service.health))["llm_process"]
        assert still_down["state"] != "ready", still_down
        assert still_down["last_exit"] == f"killed by {sig.name}", still_down

        # After the restart, the model answers again in the same call.
        back = await model_ready(service)
        assert back["pid"] != first["pid"] and back["restarts"] == first["restarts"] + 1
        answer = (await client.ask("What time do you open on Saturday?"))[-1]
        assert answer["source"] == "llm", answer
        assert answer["text"].strip()
    assert service.proc.poll() is None
    assert f"[LLM] model process killed by {sig.name}" in service.log_text()


async def test_a_hung_model_is_killed_and_restarted(service: Running) -> None:
    first = await model_ready(service)
    os.kill(first["pid"], signal.SIGSTOP)  # hangs it: no token, no health answer
    async with call(service.url) as client:
        await client.start(call_id="hung")
        done = (await client.ask("Do you deliver prescriptions?"))[-1]
        assert done["source"] == "fallback", done
        await model_down(service, wait_s=30)
        back = await model_ready(service)
        assert back["pid"] != first["pid"]
        assert "hung" in (await asyncio.to_thread(service.health))["llm_process"]["last_exit"]
        answer = (await client.ask("Where are you located?"))[-1]
        assert answer["source"] == "llm", answer
    assert service.proc.poll() is None


def serve_with_model(tmp_path: Path, model: Path) -> subprocess.CompletedProcess[str]:
    env = service_env(VOICE_AGENT_PORT=str(free_port()), VOICE_AGENT_LLM_MODEL=str(model))
    return subprocess.run(
        [sys.executable, "-m", "voice_agent", "serve"],
        env=env,
        capture_output=True,
        text=True,
        timeout=scaled(180),
        cwd=tmp_path,
    )


def test_a_model_file_that_is_not_gguf_stops_start_up_with_one_clear_line(
    tmp_path: Path,
) -> None:
    model = tmp_path / "model.gguf"
    model.write_text("this is a text file, not a model\n")
    result = serve_with_model(tmp_path, model)
    assert result.returncode == 2, result  # a clean exit, not a signal
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("voice-agent: VOICE_AGENT_LLM_MODEL: "), result.stderr
    assert "is not a GGUF model file" in last


def test_a_gguf_that_llama_cpp_cannot_load_stops_start_up_naming_the_setting(
    tmp_path: Path,
) -> None:
    model = tmp_path / "truncated.gguf"
    model.write_bytes(b"GGUF" + b"\x03\x00\x00\x00" + b"\x00" * 64)
    result = serve_with_model(tmp_path, model)
    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("voice-agent: VOICE_AGENT_LLM_MODEL: "), result.stderr
    assert "could not be served: the model process" in last
    assert "VOICE_AGENT_LLM_BACKEND=openai" in last
