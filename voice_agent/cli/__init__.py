"""The `voice-agent` command: serve, call, ingest, explain, warm, report, sql, test, flow.

May import: voice_agent."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

from voice_agent.cli import commands as run
from voice_agent.cli import scenario_command, sql_command
from voice_agent.cli.text_call import text_call
from voice_agent.errors import ConfigError, KnowledgeBaseError

DEFAULT_URL = "http://127.0.0.1:8000"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="voice-agent", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the service (settings from the environment)")
    serve.add_argument("--host", help="overrides VOICE_AGENT_HOST")
    serve.add_argument("--port", type=int, help="overrides VOICE_AGENT_PORT")
    serve.add_argument(
        "--workers", type=int, help="service processes on the port (VOICE_AGENT_WORKERS, 1)"
    )
    serve.set_defaults(run=run.serve)

    call = commands.add_parser("call", help="an interactive text call to a running service")
    call.add_argument("--url", default=DEFAULT_URL, help=f"service URL (default {DEFAULT_URL})")
    call.add_argument("--say", action="append", help="a caller line; repeat for several turns")
    call.add_argument("--flow", help="the flow to run (default: the service's default flow)")
    call.set_defaults(run=lambda a: asyncio.run(text_call(a.url, a.say, a.flow)))

    ingest = commands.add_parser("ingest", help="add documents to a running service")
    ingest.add_argument("path", help="a folder of .md/.txt files, one file, or a .jsonl file")
    ingest.add_argument("--url", default=DEFAULT_URL, help=f"service URL (default {DEFAULT_URL})")
    ingest.set_defaults(run=run.ingest)

    explain = commands.add_parser(
        "explain", help="show what every tier would decide for TEXT, with scores"
    )
    explain.add_argument("text")
    explain.add_argument("--state", help="the flow state (default: the flow's start)")
    explain.add_argument(
        "--call-id", default="", help="the call whose canary bucket decides its mode (flags)"
    )
    explain.add_argument("--flow", help="the flow (default: the service's default)")
    explain.add_argument("--url", default=DEFAULT_URL, help=f"service URL (default {DEFAULT_URL})")
    explain.add_argument("--offline", action="store_true", help="load the models here instead")
    explain.set_defaults(run=run.explain)

    warm = commands.add_parser(
        "warm", help="generate answers to frequent questions for the response cache"
    )
    warm.add_argument("questions", help="a text file, one question per line")
    warm.add_argument("--out", default="warm.jsonl", help="the warm file (default warm.jsonl)")
    warm.add_argument("--flow", help="the flow (default: the service's default)")
    warm.add_argument("--state", help="the answering state (default: the flow's first)")
    warm.set_defaults(run=run.warm)

    report = commands.add_parser(
        "report", help="compare a shadow or canary period from a telemetry file"
    )
    report.add_argument("telemetry", help="a VOICE_AGENT_TELEMETRY_FILE (JSON lines)")
    report.add_argument("--out", default="report", help="folder for report.md and charts")
    report.add_argument("--prompt-tokens", type=int, default=600, help="per LLM call")
    report.add_argument("--usd-per-million-tokens", type=float, default=0.60)
    report.set_defaults(run=run.report)

    sql_command.add_parser(commands)
    scenario_command.add_parser(commands)

    flow = commands.add_parser("flow", help="check or draw flow files")
    flow_commands = flow.add_subparsers(dest="flow_command", required=True)
    check = flow_commands.add_parser("check", help="validate flows and list every problem")
    check.add_argument("path", help="a flow file or a folder of them")
    check.set_defaults(run=run.flow_check)
    graph = flow_commands.add_parser("graph", help="print a flow as a Mermaid state diagram")
    graph.add_argument("path", help="a flow file")
    graph.set_defaults(run=run.flow_graph)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except (ConfigError, KnowledgeBaseError) as exc:
        print(f"voice-agent: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except OSError as exc:
        print(f"voice-agent: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
