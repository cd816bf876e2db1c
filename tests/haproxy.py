"""HAProxy from Debian's package in front of service processes, as a production balancer is set
up for WebSocket calls: least connections, health checks on /ready, a retry elsewhere for a
connection that reached a draining process. For the balancer test and bench/fleet.py."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from .fakes import scaled
from .redis_server import free_port

CONFIG = """
global
    maxconn 2000
defaults
    mode http
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    timeout tunnel 1h
frontend calls
    bind 127.0.0.1:{port}
    default_backend voice
backend voice
    balance leastconn
    # A connection that reaches a draining process before the health check has marked it
    # down gets its 503 and is sent to another server, as a production config should do.
    retries 3
    option redispatch 1
    retry-on conn-failure empty-response 503
    option httpchk GET /ready
    http-check expect status 200
    default-server inter 100ms fall 1 rise 2
{servers}
"""


@contextmanager
def haproxy(tmp: Path, backends: list[str]) -> Iterator[str]:
    port = free_port()
    servers = "\n".join(
        f"    server s{i} {url.removeprefix('http://')} check" for i, url in enumerate(backends)
    )
    config = tmp / "haproxy.cfg"
    config.write_text(CONFIG.format(port=port, servers=servers))
    process = subprocess.Popen(
        ["haproxy", "-db", "-f", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + scaled(10)
        while True:
            try:
                if httpx.get(url + "/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            assert time.monotonic() < deadline, "haproxy did not start"
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stderr is not None:
            process.stderr.close()
