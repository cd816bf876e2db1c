"""Starts the model process (`model_server.py`) and keeps it running.

The model runs in a child process so that a crash, hang or out-of-memory kill of llama.cpp is
one failed LLM call, never the end of every call on the service. The supervisor:

- at start-up, starts the child and waits for its `ready PORT` line: the model has loaded and
  produced tokens once; anything else (an `error` line, an exit, a signal, no line in time)
  stops start-up with one line naming the cause;
- while serving, notices the child's exit at once, and a hang through its health endpoint
  (a generation with no progress for `hang_timeout_s`, or `health_failures` checks in a row
  unanswered), kills a hung child, and starts a new one after a backoff that doubles from
  `backoff_min_s` up to `backoff_max_s` and starts over once a child has stayed up for
  `stable_after_s`.

Every change is logged as an `[LLM]` line and shown by `status()` (in /health and /ready).
"""

from __future__ import annotations

import asyncio
import logging
import os
import selectors
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import httpx

from voice_agent.errors import ConfigError
from voice_agent.listeners import Listeners

log = logging.getLogger(__name__)

ModelState = Literal["starting", "ready", "restarting", "stopped"]


class ModelStartError(ConfigError):
    """The model process could not produce a token; no restart would help."""


@dataclass(frozen=True, slots=True)
class SupervisorConfig:
    command: Sequence[str]
    start_timeout_s: float = 120.0
    hang_timeout_s: float = 10.0
    health_interval_s: float = 1.0
    health_failures: int = 3
    backoff_min_s: float = 0.5
    backoff_max_s: float = 30.0
    stable_after_s: float = 60.0
    poll_s: float = 0.05  # how often the child's exit is looked for


def restart_delay(failures: int, low_s: float, high_s: float) -> float:
    """The wait before restart number `failures` (1, 2, ...) of a crash streak."""
    return float(min(high_s, low_s * 2 ** max(0, failures - 1)))


def describe_exit(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exited with status {returncode}"


def _read_ready_line(proc: subprocess.Popen[bytes], timeout_s: float) -> str:
    """The child's first stdout line, or a description of why none came."""
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout_s
    buffer = b""
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        while b"\n" not in buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                return f"no answer within {timeout_s:.0f} s"
            if not selector.select(timeout=left):
                continue
            data = os.read(proc.stdout.fileno(), 4096)
            if not data:  # the child closed its stdout: it is ending
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    return "closed its output without a word"
                return describe_exit(proc.returncode)
            buffer += data
    return buffer.split(b"\n", 1)[0].decode(errors="replace").strip()


def _end(proc: subprocess.Popen[bytes], grace_s: float = 0.0) -> None:
    """Closing its stdin asks the child to exit; past `grace_s` it is killed."""
    for pipe in (proc.stdin, proc.stdout):
        if pipe is not None:
            try:
                pipe.close()
            except OSError:  # a broken pipe to a child that is already gone
                pass
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class ModelSupervisor:
    def __init__(self, config: SupervisorConfig) -> None:
        self.config = config
        self.state: ModelState = "starting"
        self.base_url: str | None = None
        self.restarts = 0
        self.last_exit: str | None = None
        self.since = time.monotonic()
        self.on_ready: Listeners[[str]] = Listeners("model ready")
        self._proc: subprocess.Popen[bytes] | None = None
        self._ready_at = 0.0
        self._task: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def status(self) -> dict[str, object]:
        return {
            "state": self.state,
            "pid": self.pid if self.state == "ready" else None,
            "restarts": self.restarts,
            "last_exit": self.last_exit,
            "for_s": round(time.monotonic() - self.since, 1),
        }

    def start(self) -> None:
        """Start the child and wait until it has produced tokens; raise `ModelStartError`
        with the cause if it cannot."""
        self._launch()

    def supervise(self) -> None:
        """Watch the child from now on (needs the running event loop)."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(
                self._supervise(), name="model-supervisor"
            )

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            if task.get_loop() is asyncio.get_running_loop():
                try:
                    await task
                except asyncio.CancelledError:
                    pass
        self._set_state("stopped")
        await asyncio.to_thread(self._stop_child)

    def _set_state(self, state: ModelState) -> None:
        if state != self.state:
            self.state, self.since = state, time.monotonic()

    def _launch(self) -> None:
        proc = subprocess.Popen(
            list(self.config.command),
            # The child exits when this pipe closes: when this process ends, however it ends.
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            # Its own session: a Ctrl-C in the service's terminal is the service's to handle.
            start_new_session=True,
        )
        line = _read_ready_line(proc, self.config.start_timeout_s)
        if not line.startswith("ready ") or self.state == "stopped":
            _end(proc)
            if self.state == "stopped":  # closed while this one was starting
                return
            cause = line[len("error ") :] if line.startswith("error ") else line
            raise ModelStartError(f"the model process {cause}")
        self._proc = proc
        self.base_url = f"http://127.0.0.1:{int(line.split()[1])}/v1"
        self._ready_at = time.monotonic()
        self.on_ready.notify(self.base_url)
        self._set_state("ready")

    def _stop_child(self) -> None:
        if self._proc is not None:
            _end(self._proc, grace_s=5)

    def _kill_child(self) -> None:
        if self._proc is not None:
            _end(self._proc)

    async def _supervise(self) -> None:
        streak = 0
        while True:
            if self.state == "ready":
                why = await self._watch()
                uptime = time.monotonic() - self._ready_at
                self.last_exit = why
                self._set_state("restarting")
                if uptime >= self.config.stable_after_s:
                    streak = 0
                log.error(
                    "[LLM] model process %s after %.1f s up; LLM turns get the fallback line "
                    "until it is back",
                    why,
                    uptime,
                )
            streak += 1
            delay = restart_delay(streak, self.config.backoff_min_s, self.config.backoff_max_s)
            log.warning(
                "[LLM] restarting the model process in %.1f s (restart %d)",
                delay,
                self.restarts + 1,
            )
            await asyncio.sleep(delay)
            self.restarts += 1
            started = time.monotonic()
            try:
                await asyncio.to_thread(self._launch)
            except ModelStartError as exc:
                self.last_exit = str(exc).removeprefix("the model process ")
                log.error("[LLM] model process did not start again: %s", exc)
                continue
            log.warning(
                "[LLM] model process ready again (pid %s, %.1f s to load and warm)",
                self.pid,
                time.monotonic() - started,
            )

    async def _watch(self) -> str:
        """Return when the child is gone (killed here if it hung), saying why."""
        proc = self._proc
        assert proc is not None and self.base_url is not None
        health_url = self.base_url.removesuffix("/v1") + "/health"
        misses = 0
        next_check = time.monotonic() + self.config.health_interval_s
        async with httpx.AsyncClient(timeout=self.config.health_interval_s) as http:
            while True:
                code = proc.poll()
                if code is not None:
                    return describe_exit(code)
                if time.monotonic() < next_check:
                    await asyncio.sleep(self.config.poll_s)
                    continue
                next_check = time.monotonic() + self.config.health_interval_s
                try:
                    health = (await http.get(health_url)).json()
                except (httpx.HTTPError, ValueError):
                    if proc.poll() is not None:
                        continue
                    misses += 1
                    if misses >= self.config.health_failures:
                        await asyncio.to_thread(self._kill_child)
                        return f"hung: {misses} health checks in a row unanswered, killed"
                    continue
                misses = 0
                stalled = health.get("stalled_s")
                if isinstance(stalled, int | float) and stalled >= self.config.hang_timeout_s:
                    await asyncio.to_thread(self._kill_child)
                    return f"hung: no token for {stalled:.1f} s, killed"
