"""`voice-agent serve --workers N`: N service processes answering on one listening socket, so a
machine or pod uses its cores (one event loop is one core).

The parent binds the socket, starts the workers (spawned: fresh interpreters, no inherited
threads or model state), and supervises them: a worker that dies after it was serving is
started again after a growing pause; one that dies while starting (a model or setting that
cannot work) stops the whole service with status 1, since every restart would fail the same way.
SIGTERM is passed to every worker, each drains its own calls (`drain.py`), and the parent exits
0 once they all have. Each worker builds its own service (encoder, knowledge base and, with the
bundled model, its own model process); they share Redis for the flags, the call limits and the
cache, and one metrics folder so that a scrape of the port sums every process.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import shutil
import signal
import socket
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.context import SpawnProcess
from multiprocessing.synchronize import Event
from types import FrameType

import uvicorn
from fastapi import FastAPI

from voice_agent.errors import ConfigError
from voice_agent.llm.supervisor import describe_exit, restart_delay
from voice_agent.server.access import keep_keys_out_of_logs
from voice_agent.settings import Settings, load_settings

log = logging.getLogger(__name__)

SPAWN = multiprocessing.get_context("spawn")
multiprocessing.allow_connection_pickling()  # the listening socket goes to each worker
POLL_S = 0.5  # how often the parent looks at its workers
RESTART_LOW_S, RESTART_HIGH_S = 1.0, 30.0
HEALTHY_AFTER_S = 60.0  # a worker serving this long ends its crash streak


def uvicorn_config(app: FastAPI, settings: Settings) -> uvicorn.Config:
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        # Frames past the app's own limit get an error frame; this bound only protects memory.
        ws_max_size=settings.max_frame_bytes * 16,
        log_level=settings.log_level.lower(),
    )
    keep_keys_out_of_logs()  # after the config, which sets uvicorn's loggers up
    return config


def serve_one(
    settings: Settings,
    sockets: list[socket.socket] | None = None,
    on_built: Callable[[], None] | None = None,
) -> None:
    """One service process: built before the server starts, so that a model or setting that
    cannot work stops start-up with one line instead of a traceback from inside the server.
    `on_built` is told once the service is built (a worker tells its parent)."""
    from voice_agent.server.app import create_app
    from voice_agent.server.build import build_service
    from voice_agent.server.drain import DrainingServer

    app = create_app(service=build_service(settings), owns_service=True)
    if on_built is not None:
        on_built()
    server = DrainingServer(
        uvicorn_config(app, settings), app, settings.drain_timeout_s, settings.drain_goodbye
    )
    server.run(sockets=sockets)


def _worker_main(overrides: dict[str, str], sock: socket.socket, built: Event) -> None:
    """A worker's life, in the spawned process: the parent's settings plus the metrics folder
    (read from the environment again here: settings are not sent across)."""
    settings = load_settings(**overrides)
    logging.basicConfig(
        level=settings.log_level.upper(),
        format=f"%(asctime)s %(levelname)s [worker {os.getpid()}] %(name)s %(message)s",
    )
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent turns Ctrl-C into a drain
    serve_one(settings, [sock], built.set)


@dataclass(slots=True)
class Worker:
    process: SpawnProcess
    built: Event
    started_at: float = field(default_factory=time.monotonic)


class Workers:
    """The parent: starts, watches, restarts and stops the workers."""

    def __init__(self, settings: Settings, overrides: dict[str, str], sock: socket.socket):
        self._settings = settings
        self._overrides = overrides
        self._sock = sock
        self._workers: list[Worker] = []
        self._stopping = False
        self._failures = 0
        self._failed_start = False

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        self._workers = [self._start() for _ in range(self._settings.workers)]
        log.info("[WORKERS] %d workers on %s:%s", len(self._workers), *self._address())
        while not self._stopping:
            time.sleep(POLL_S)
            self._replace_the_dead()
        for worker in self._workers:
            worker.process.join()
        codes = [worker.process.exitcode for worker in self._workers]
        log.info("[WORKERS] stopped: %s", ", ".join(describe_exit(c or 0) for c in codes))
        return 1 if self._failed_start or any(codes) else 0

    def _address(self) -> tuple[str, int]:
        host, port = self._sock.getsockname()[:2]
        return host, port

    def _start(self) -> Worker:
        built = SPAWN.Event()
        process = SPAWN.Process(
            target=_worker_main, args=(self._overrides, self._sock, built), name="voice-agent"
        )
        process.start()
        return Worker(process, built)

    def _replace_the_dead(self) -> None:
        for index, worker in enumerate(self._workers):
            if worker.process.is_alive() or self._stopping:
                continue
            code = worker.process.exitcode or 0
            _forget_metrics(self._settings, worker.process.pid)
            if not worker.built.is_set():
                log.error("[WORKERS] a worker %s while starting: stopping", describe_exit(code))
                self._failed_start = True
                self._stop(signal.SIGTERM, None)
                return
            serving_s = time.monotonic() - worker.started_at
            self._failures = 1 if serving_s > HEALTHY_AFTER_S else self._failures + 1
            delay = restart_delay(self._failures, RESTART_LOW_S, RESTART_HIGH_S)
            log.error("[WORKERS] worker %s %s; restarting in %.0f s", worker.process.pid,
                      describe_exit(code), delay)  # fmt: skip
            time.sleep(delay)
            if not self._stopping:
                self._workers[index] = self._start()

    def _stop(self, sig: int, frame: FrameType | None) -> None:
        """SIGTERM and SIGINT: every worker drains (a second signal is passed on too, which
        makes the workers stop waiting for their calls)."""
        self._stopping = True
        for worker in self._workers:
            if worker.process.is_alive() and worker.process.pid is not None:
                os.kill(worker.process.pid, signal.SIGTERM)


def _forget_metrics(settings: Settings, pid: int | None) -> None:
    """A dead worker's open-calls gauge no longer counts (its counters still do)."""
    if pid is not None and settings.prometheus_multiproc_dir:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid, settings.prometheus_multiproc_dir)  # type: ignore[no-untyped-call]  # untyped upstream


def _bind(host: str, port: int) -> socket.socket:
    """The one listening socket every worker accepts on (inherited by the spawned workers)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def serve_workers(settings: Settings, overrides: dict[str, str]) -> int:
    """Bind the port, run `settings.workers` workers on it, return the exit status."""
    if not settings.redis_url:
        raise ConfigError(
            f"{settings.workers} workers need VOICE_AGENT_REDIS_URL: the processes share the "
            "flags, the call limits and the cache through Redis; without it a flag change or "
            "a rollback would reach one process of the pod"
        )
    own_dir = not settings.prometheus_multiproc_dir
    metrics_dir = settings.prometheus_multiproc_dir or tempfile.mkdtemp(prefix="voice-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir  # the workers inherit it
    settings = settings.model_copy(update={"prometheus_multiproc_dir": metrics_dir})
    sock = _bind(settings.host, settings.port)
    try:
        return Workers(settings, overrides, sock).run()
    finally:
        sock.close()
        if own_dir:
            shutil.rmtree(metrics_dir, ignore_errors=True)
