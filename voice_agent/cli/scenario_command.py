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

from voice_agent.errors import ConfigError
from voice_agent.scenarios.loader import load_scenarios
from voice_agent.scenarios.model import Scenario
from voice_agent.scenarios.outcome import Verdict
from voice_agent.scenarios.paraphrase import ParaphraseCache, paraphrases, rate_lines, variants
from voice_agent.scenarios.report import junit_xml, paraphrase_report, text_report
from voice_agent.scenarios.suite import run_scenario

START_TIMEOUT_S = 180.0  # the in-process service's start (models loaded, the cache warmed)


@asynccontextmanager
async def local_service(llm: str) -> AsyncIterator[str]:
    """The service from this environment's settings, on a free loopback port, open (no keys:
    only this process talks to it); its base URL."""
    from voice_agent.server.app import create_app
    from voice_agent.server.build import build_service
    from voice_agent.server.loopback import on_loopback
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
    async with on_loopback(app, start_timeout_s=START_TIMEOUT_S) as url:
        yield url


async def reword_all(
    scenarios: list[tuple[Path, Scenario]], n: int, cache_dir: Path
) -> dict[str, list[str]]:
    """`n` rewordings of every caller line, from the configured LLM (the cache first)."""
    from voice_agent.server.build import build_llm
    from voice_agent.settings import load_settings

    settings = load_settings()
    llm = await asyncio.to_thread(build_llm, settings)
    supervise = getattr(llm, "supervise", None)
    if supervise is not None:
        supervise()
    model = f"{settings.llm_backend.value}:{settings.llm_model}:{llm.name}"
    cache = ParaphraseCache(cache_dir, model)
    lines = sorted({s.say for _, sc in scenarios for s in sc.steps if s.say is not None})
    try:
        return {line: await paraphrases(llm, line, n, cache) for line in lines}
    finally:
        cache.save()
        closer = getattr(llm, "close", None)
        if closer is not None:
            await closer()


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
    path = Path(args.path)
    if not path.exists():
        raise ConfigError(f"{path}: no such scenario file or folder")
    scenarios = load_scenarios(path)
    originals = asyncio.run(run_all(args.url, scenarios, args.key, args.llm))
    print(text_report(originals), end="")
    if args.junit:  # the team's own wordings: what CI passes or fails on
        Path(args.junit).write_text(junit_xml(originals), encoding="utf-8")
    if args.paraphrases:
        cache_dir = Path(args.paraphrase_cache).expanduser()
        reworded = asyncio.run(reword_all(scenarios, args.paraphrases, cache_dir))
        made = [variants(scenario, reworded, args.paraphrases) for _, scenario in scenarios]
        runs = [(file, v) for (file, _), mine in zip(scenarios, made, strict=True) for v in mine]
        # In-process, a service of their own: what the original runs left in its cache would
        # answer a reworded question the originals asked.
        judged = iter(asyncio.run(run_all(args.url, runs, args.key, args.llm)))
        rates = []
        for (_, scenario), mine in zip(scenarios, made, strict=True):
            mine_judged = [next(judged) for _ in mine]
            rates += rate_lines(scenario, [(v.scenario, v.steps_passed()) for v in mine_judged])
        print(paraphrase_report(rates), end="")
    # The team's own wordings decide the exit code; rewordings are for reading.
    return 0 if all(v.passed for v in originals) else 1


def count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


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
    parser.add_argument(
        "--paraphrases", type=count, default=0, metavar="N",
        help="also run every scenario N more times, each caller line reworded by the "
        "configured LLM; prints per-line pass rates",
    )  # fmt: skip
    parser.add_argument(
        "--paraphrase-cache", default="~/.cache/voice-agent/paraphrases",
        help="where rewordings are kept between runs (default ~/.cache/voice-agent/paraphrases)",
    )  # fmt: skip
    parser.add_argument("--junit", help="write JUnit XML here, for CI")
    parser.set_defaults(run=test_command)
