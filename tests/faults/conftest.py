"""Faults: the service on a real port with a dependency or a client misbehaving, and a healthy
call beside it. Each test names the bound it holds."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest

from voice_agent.server.app import create_app
from voice_agent.server.service import Service
from voice_agent.server.state import AppState

from ..conftest import serve


@pytest.fixture
def served() -> Callable[[Service], Any]:
    """`async with served(service) as (url, state):` the app on a free port, and its state
    (the calls it holds), for tests that watch a call's insides."""

    @asynccontextmanager
    async def start(service: Service) -> AsyncIterator[tuple[str, AppState]]:
        app = create_app(service=service)
        async with serve(app) as url:
            yield url, app.state.voice_agent

    return start
