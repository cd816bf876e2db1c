"""Three `voice-agent serve` processes behind HAProxy (from Debian's package), sharing one
redis-server, the WebSocket upgrade passed through: calls spread across the processes; a flag
change sent through the balancer is obeyed by all three; one process drained (SIGTERM) while
its calls are mid-answer finishes every answer, the balancer sends new calls to the other two,
no call is cut, and the drained process exits 0."""

from __future__ import annotations

import asyncio
import shutil
import time
from contextlib import AsyncExitStack
from pathlib import Path

import httpx
import pytest

from ..conftest import serve
from ..fakes import scaled
from ..haproxy import haproxy
from ..openai_server import Behaviour, openai_compatible_app
from ..redis_server import RedisServer
from ..service_process import ServiceProcess, callers, service_process

pytestmark = [
    pytest.mark.model,
    pytest.mark.skipif(
        shutil.which("haproxy") is None or shutil.which("redis-server") is None,
        reason="haproxy and redis-server are installed by `make servers` (apt-get)",
    ),
]

ANSWER = "We deliver to your door for free within five miles."


async def active_calls(processes: list[ServiceProcess]) -> list[int]:
    async with httpx.AsyncClient() as http:
        return [(await http.get(p.url + "/health")).json()["active_calls"] for p in processes]


async def test_three_processes_behind_haproxy_share_flags_and_drain_without_cutting_a_call(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    behaviour = Behaviour(tokens=[f"{w} " for w in ANSWER.split()], token_s=0.1)
    async with AsyncExitStack() as stack:
        llm_url = await stack.enter_async_context(serve(openai_compatible_app(behaviour)))
        env = {"VOICE_AGENT_DRAIN_TIMEOUT_S": "20", "VOICE_AGENT_RESPONSE_CACHE": "false"}
        processes = [
            await stack.enter_async_context(
                service_process(tmp_path, redis_server.url, llm_url, **env)
            )
            for _ in range(3)
        ]
        balancer = stack.enter_context(haproxy(tmp_path, [p.url for p in processes]))

        # Calls spread across the three processes.
        async with callers(balancer, 9, stack) as calls:
            for caller in calls:
                assert (await caller.start())["mode"] == "enabled"
            spread = await active_calls(processes)
            assert sum(spread) == 9 and min(spread) >= 2, spread  # leastconn: about 3 each

            # A flag change through the balancer reaches one process; all three obey it.
            async with httpx.AsyncClient(base_url=balancer) as http:
                changed = await http.patch("/v1/admin/flags", json={"rollout_percent": 40})
            assert changed.status_code == 200
            deadline = time.monotonic() + scaled(1.0)
            async with httpx.AsyncClient() as http:
                for process in processes:
                    while (await http.get(process.url + "/v1/admin/flags")).json()[
                        "rollout_percent"
                    ] != 40:
                        assert time.monotonic() < deadline, f"{process.url} never followed"
                        await asyncio.sleep(0.01)

            # Every call asks; one process is drained while the answers stream.
            asked = [asyncio.ensure_future(caller.ask("Do you deliver?")) for caller in calls]
            await asyncio.sleep(0.3)
            drained = processes[0]
            drained.sigterm()
            answers = await asyncio.gather(*asked)
            assert [a["text"] for a in answers] == [ANSWER] * 9, answers  # not one cut

            # The balancer sees /ready fail and sends new calls to the other two.
            await asyncio.sleep(0.5)
            async with callers(balancer, 6, stack) as late:
                for caller in late:
                    assert (await caller.start())["type"] == "call.ready"
                assert (await late[0].ask("Do you deliver?"))["text"] == ANSWER
                others = await active_calls(processes[1:])
                old = sum(spread[1:])
                assert sum(others) == old + 6, others  # their own calls, and the six new
            for caller in calls:  # the callers hang up; the drained process is then idle
                await caller.ws.close()
            assert await drained.exited(wait_s=10) == 0
