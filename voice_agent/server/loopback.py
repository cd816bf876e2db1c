"""The app served by uvicorn on a free loopback port, inside the caller's event loop: for
`voice-agent test` in-process and for the tests' real server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import uvicorn

from voice_agent.errors import ConfigError

START_POLL_S = 0.01


@asynccontextmanager
async def on_loopback(
    app: Any,
    *,
    start_timeout_s: float | None = None,
    stop_timeout_s: float | None = None,
    ws_max_size: int | None = None,
) -> AsyncIterator[str]:
    """Yields the app's http:// base URL once uvicorn listens; stops it on leaving. A server
    that fails to start raises its own error; one still not listening after `start_timeout_s`
    raises ConfigError; `stop_timeout_s` bounds the wait for it to stop (None: no bound)."""
    options: dict[str, Any] = {} if ws_max_size is None else {"ws_max_size": ws_max_size}
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", **options)
    server = uvicorn.Server(config)
    loop = asyncio.get_running_loop()
    task = loop.create_task(server.serve(), name="loopback-server")
    try:
        deadline = None if start_timeout_s is None else loop.time() + start_timeout_s
        while not server.started:
            if task.done():
                task.result()  # it failed to start: say why
            if deadline is not None and loop.time() > deadline:
                raise ConfigError(f"the service did not start in {start_timeout_s:.0f} s")
            await asyncio.sleep(START_POLL_S)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, timeout=stop_timeout_s)
