"""`voice-agent test SCENARIOS [--url URL]`: a team's scenario files run against the service,
in this process (the service built from the settings on a free loopback port, with the
configured LLM or the model-free extractive answerer for deterministic runs) or against one
already running (`--url`). A readable report, JUnit XML for CI, exit 1 when any fails.

May import: voice_agent."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from voice_agent.scenarios.loader import load_scenarios
from voice_agent.scenarios.model import Scenario
from voice_agent.scenarios.report import Verdict, junit_xml, run_scenario, text_report


@asynccontextmanager
async def local_service(llm: str) -> AsyncIterator[str]:
    """The service from this environment's settings, on a free loopback port, open (no keys:
    only this process talks to it); its base URL."""
    import uvicorn

    from voice_agent.server.app import create_app
    from voice_agent.server.build import build_service
    from voice_agent.settings import load_settings

    overrides: dict[str, Any] = {
        "VOICE_AGENT_HOST": "127.0.0.1", "VOICE_AGENT_PORT": 0,
        "VOICE_AGENT_API_KEYS": "", "VOICE_AGENT_ADMIN_KEYS": "",
    }  # fmt: skip
    if llm != "configured":
        overrides["VOICE_AGENT_LLM_BACKEND"] = llm
    settings = load_settings(**overrides)
    service = await asyncio.to_thread(build_service, settings)
    app = create_app(service=service, owns_service=True)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    task = asyncio.get_running_loop().create_task(server.serve(), name="scenario-service")
    try:
        while not server.started:
            if task.done():
                task.result()  # it failed to start: say why
            await asyncio.sleep(0.02)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def run_all(
    url: str | None, scenarios: list[tuple[Path, Scenario]], key: str | None, llm: str
) -> list[Verdict]:
    """One after another, in file order: a scenario may rely on what the ones before it left
    (a cached answer), and the report reads in the files' order."""
    if url is not None:
        return [await run_scenario(url, file, s, key) for file, s in scenarios]
    async with local_service(llm) as local:
        return [await run_scenario(local, file, s, None) for file, s in scenarios]


def test_command(args: argparse.Namespace) -> int:
    scenarios = load_scenarios(Path(args.path))
    verdicts = asyncio.run(run_all(args.url, scenarios, args.key, args.llm))
    print(text_report(verdicts), end="")
    if args.junit:
        Path(args.junit).write_text(junit_xml(verdicts), encoding="utf-8")
    return 0 if all(v.passed for v in verdicts) else 1


def add_parser(commands: Any) -> None:
    parser = commands.add_parser("test", help="run scenario files against the service")
    parser.add_argument("path", help="a scenario file or a folder of them (*.yaml)")
    parser.add_argument("--url", help="a running service (http://host:port); default: in-process")
    parser.add_argument("--key", help="the API key for --url (sent as a header and token)")
    parser.add_argument(
        "--llm", choices=["configured", "extractive"], default="configured",
        help="in-process: the configured LLM, or the model-free extractive answerer "
        "(deterministic: the knowledge base's closest sentence)",
    )  # fmt: skip
    parser.add_argument("--junit", help="write JUnit XML here, for CI")
    parser.set_defaults(run=test_command)
