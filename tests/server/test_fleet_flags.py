"""Fleet-wide flags through a real redis-server: two processes' services share one flags
document. A PATCH on one reaches the other's next turn within a second, audited once, where it
was made; an automatic rollback on one reaches all; with Redis down a process keeps the flags it
had, says so in /health and refuses a PATCH (503) rather than split the fleet."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from voice_agent.server.service import Service
from voice_agent.telemetry.quality import QualityAlert

from ..conftest import call
from ..fakes import FakeLLM, scaled
from ..redis_server import RedisServer

pytestmark = pytest.mark.model


async def mode_of(http: httpx.AsyncClient) -> str:
    return str((await http.get("/v1/admin/flags")).json()["mode"])


async def until_mode(http: httpx.AsyncClient, mode: str, within_s: float) -> float:
    """Seconds until the process's flags say `mode` (fails past `within_s`)."""
    started = time.perf_counter()
    while (await mode_of(http)) != mode:
        assert time.perf_counter() - started < within_s, f"still not {mode}"
        await asyncio.sleep(0.005)
    return time.perf_counter() - started


def audited(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


async def test_flags_are_the_fleets_changes_reach_every_process_and_are_audited_once(
    make_service: Callable[..., Service],
    running: Any,
    redis_server: RedisServer,
    tmp_path: Path,
) -> None:
    audit_a, audit_b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    common = {"VOICE_AGENT_REDIS_URL": redis_server.url, "VOICE_AGENT_REDIS_TIMEOUT_S": 0.2}
    a = make_service(FakeLLM(), VOICE_AGENT_AUDIT_LOG=str(audit_a), **common)
    b = make_service(
        FakeLLM(), VOICE_AGENT_AUDIT_LOG=str(audit_b), LATENCY_OPTIMIZATION_MODE="shadow", **common
    )
    async with running(a) as url_a, running(b) as url_b:
        async with (
            httpx.AsyncClient(base_url=url_a) as http_a,
            httpx.AsyncClient(base_url=url_b) as http_b,
        ):
            # B started in shadow; it joined a fleet whose flags A set first: enabled.
            assert await mode_of(http_b) == "enabled"

            changed = await http_a.patch("/v1/admin/flags", json={"mode": "shadow"})
            assert changed.status_code == 200
            took = await until_mode(http_b, "shadow", scaled(1.0))
            async with call(url_b) as on_b:
                assert (await on_b.start())["mode"] == "shadow"  # B's next call obeys

            await http_a.patch("/v1/admin/flags", json={"mode": "enabled"})
            await until_mode(http_b, "enabled", scaled(1.0))
            b.quality.listeners.notify(QualityAlert("quick", "poor", 40.0, 50))
            assert await mode_of(http_b) == "shadow"  # at once on the process that saw it
            rolled = await until_mode(http_a, "shadow", scaled(1.0))
            health = (await http_a.get("/health")).json()["flags_source"]
    print(f"\nPATCH on A reached B in {took * 1000:.1f} ms; B's rollback reached A in "
          f"{rolled * 1000:.1f} ms")  # fmt: skip
    assert health["shared"] and health["in_step"] and health["version"] >= 4
    lines = audited(audit_a) + audited(audit_b)
    assert [line["new"] for line in audited(audit_a)] == [{"mode": "shadow"}, {"mode": "enabled"}]
    rollbacks = [line for line in lines if line["who"].startswith("auto-rollback")]
    assert len(rollbacks) == 1 and rollbacks[0] in audited(audit_b)  # once, where it happened


async def test_with_redis_down_a_process_keeps_its_flags_and_refuses_a_patch(
    make_service: Callable[..., Service], running: Any, redis_server: RedisServer
) -> None:
    service = make_service(
        FakeLLM(), VOICE_AGENT_REDIS_URL=redis_server.url, VOICE_AGENT_REDIS_TIMEOUT_S=0.2
    )
    async with running(service) as url, httpx.AsyncClient(base_url=url) as http:
        await http.patch("/v1/admin/flags", json={"rollout_percent": 25})
        redis_server.kill()
        deadline = time.monotonic() + scaled(5)
        while (await http.get("/health")).json()["flags_source"]["in_step"]:
            assert time.monotonic() < deadline, "the lost connection was never noticed"
            await asyncio.sleep(0.1)
        refused = await http.patch("/v1/admin/flags", json={"mode": "disabled"})
        health = (await http.get("/health")).json()
        async with call(url) as client:
            await client.start()
            done = (await client.ask("Do you deliver?"))[-1]  # calls go on meanwhile
        await asyncio.to_thread(redis_server.start)
        deadline = time.monotonic() + scaled(10)
        while not (await http.get("/health")).json()["flags_source"]["in_step"]:
            assert time.monotonic() < deadline, "never back in step with Redis"
            await asyncio.sleep(0.1)
    assert refused.status_code == 503 and "Redis" in refused.json()["detail"]
    assert health["flags"]["mode"] == "enabled" and health["flags"]["rollout_percent"] == 25
    assert health["flags_source"]["stale_since"] is not None
    assert done["source"] == "llm"
