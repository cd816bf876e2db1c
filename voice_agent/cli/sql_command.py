"""`voice-agent sql FILE... [QUERY]`: SQL over telemetry files (voice_agent/telemetry/sql.py),
printed as a table, CSV or JSON lines. The query comes from the command line, a saved
on-call query (`--saved NAME`, `--list` shows them) or standard input.

May import: voice_agent."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal, TextIO

from voice_agent.errors import ConfigError


def cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:g}" if abs(value) >= 1e-4 or value == 0 else f"{value:.2e}"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return str(value)


def write_table(columns: Sequence[str], rows: Sequence[tuple[Any, ...]], out: TextIO) -> None:
    text = [[cell(v) for v in row] for row in rows]
    widths = [max([len(c), *(len(r[i]) for r in text)]) for i, c in enumerate(columns)]
    # Numbers line up on the right, as figures do in a table.
    numeric = [
        all(isinstance(row[i], int | float) and not isinstance(row[i], bool)
            for row in rows if row[i] is not None)
        for i in range(len(columns))
    ]  # fmt: skip

    def line(values: Sequence[str]) -> str:
        cells = [v.rjust(w) if n else v.ljust(w)
                 for v, w, n in zip(values, widths, numeric, strict=True)]  # fmt: skip
        return "  ".join(cells).rstrip() + "\n"

    out.write(line(columns))
    out.write("  ".join("-" * w for w in widths) + "\n")
    for row in text:
        out.write(line(row))
    out.write(f"({len(rows)} row{'' if len(rows) == 1 else 's'})\n")


def write_rows(
    columns: Sequence[str], rows: Sequence[tuple[Any, ...]], form: str, out: TextIO
) -> None:
    if form == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([cell(v) for v in row] for row in rows)
    elif form == "json":
        for row in rows:
            out.write(json.dumps(dict(zip(columns, row, strict=True)), default=str) + "\n")
    else:
        write_table(columns, rows, out)


def parse_now(text: str | None) -> datetime | Literal["latest"] | None:
    if text is None or text == "latest":
        return text  # type: ignore[return-value]
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ConfigError(f"--now: {text!r} is not an ISO time (or 'latest')") from exc
    if moment.tzinfo is None:
        raise ConfigError(f"--now: {text!r} needs its time zone, e.g. {text}+00:00")
    return moment


def sql_command(args: argparse.Namespace) -> int:
    from voice_agent.telemetry import queries, sql

    if args.list:
        for saved in queries.SAVED:
            print(f"{saved.name}: {saved.question}")
        return 0
    if args.saved is not None:
        if args.saved not in queries.BY_NAME:
            names = ", ".join(queries.BY_NAME)
            raise ConfigError(f"no saved query {args.saved!r} (there are: {names})")
        query = queries.BY_NAME[args.saved].sql
    else:
        query = args.query if args.query is not None else sys.stdin.read()
    if not args.files:
        raise ConfigError("name at least one telemetry file")
    db = sql.connect(args.files, parse_now(args.now))
    try:
        columns, rows = sql.run(db, query)
    except ValueError as exc:
        print(f"voice-agent sql: {exc}", file=sys.stderr)
        return 2
    skipped = sql.unreadable_lines(db)
    if skipped:
        print(f"voice-agent sql: {skipped} line(s) that are not JSON skipped", file=sys.stderr)
    write_rows(columns, rows, args.format, sys.stdout)
    return 0


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "sql", help="SQL over telemetry files: latency_logs, quality_logs (DuckDB)"
    )
    parser.add_argument("files", nargs="*", help="telemetry files (JSON lines); globs allowed")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("-q", "--query", help="the SQL (default: read from standard input)")
    source.add_argument("--saved", metavar="NAME", help="a saved on-call query (see --list)")
    source.add_argument("--list", action="store_true", help="list the saved queries")
    parser.add_argument(
        "--now", help="what log_now() returns: an ISO time with its zone, or 'latest' (the "
        "newest record's time, for a recorded run); default: the current time",
    )  # fmt: skip
    parser.add_argument("--format", choices=["table", "csv", "json"], default="table")
    parser.set_defaults(run=sql_command)
