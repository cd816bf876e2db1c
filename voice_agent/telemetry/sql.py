"""SQL over telemetry files (`VOICE_AGENT_TELEMETRY_FILE`), in DuckDB, embedded: no server.

The JSON lines are read where they lie, every time a query runs (nothing is copied or
imported), as three views:

- `latency_logs`: a row per turn served: `ts` (UTC), `call_id`, `turn_id`, `source` (the
  response type: quick, cache, llm, fallback, flow), `flow`, `state`, `mode`, `first_token_ms`,
  `total_ms`, a column per stage (`embedding_ms`, `flow_step_ms`, `quick_ms`, `cache_ms`,
  `retrieval_ms`, `llm_first_token_ms`, `llm_total_ms`, `speculation_wait_ms`; NULL where the
  stage did not run), `cache_result`, `intent_score`, `fallback_reason`, `question`, `answer`
  and `stages_ms` (every stage, as a map).
- `quality_logs`: a row per scored answer: `ts` (when scored), `call_id`, `turn_id`, `source`,
  `state`, `mode`, `score` (0-100), its parts `relevance`, `speech`, `grounding`,
  `consistency`, `intent` (NULL where the score had no such part) and `parts` (a map),
  `would_be` (a fast tier's answer scored in shadow mode, not served), `status` and
  `window_mean` (the source's quality status once the score joined its window: good, degraded,
  poor; NULL in lines written by a service that did not record them).
- `telemetry`: the lines as written, for anything the two leave out.

`log_now()` is the time "now" in queries such as "the last 24 hours": the current time, or the
time given (`--now`), so a recorded run can be asked the same questions later.
"""

from __future__ import annotations

import glob
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import duckdb

from voice_agent.errors import ConfigError

# What each line may hold; a field a line lacks is NULL. `would_be` is a turn's would-be
# answer (an object) or a quality line's flag (true/false), so it stays JSON until a view
# reads it.
COLUMNS = {
    "type": "VARCHAR",
    "call": "VARCHAR",
    "turn": "BIGINT",
    "source": "VARCHAR",
    "flow": "VARCHAR",
    "state": "VARCHAR",
    "mode": "VARCHAR",
    "at": "DOUBLE",
    "question": "VARCHAR",
    "answer": "VARCHAR",
    "latency_ms": "MAP(VARCHAR, DOUBLE)",
    "outcome": "STRUCT(cache VARCHAR, intent_score DOUBLE, fallback_reason VARCHAR)",
    "detail": "JSON",
    "would_be": "JSON",
    "score": "DOUBLE",
    "parts": "MAP(VARCHAR, DOUBLE)",
    "status": "VARCHAR",
    "window_mean": "DOUBLE",
}
STAGES = (
    "embedding",
    "flow_step",
    "quick",
    "cache",
    "retrieval",
    "llm_first_token",
    "llm_total",
    "speculation_wait",
)
PARTS = ("relevance", "speech", "grounding", "consistency", "intent")

LATENCY_LOGS = f"""
CREATE VIEW latency_logs AS
SELECT to_timestamp("at") AS ts, "call" AS call_id, turn AS turn_id, source, flow, state, mode,
    latency_ms['first_token'] AS first_token_ms, latency_ms['total'] AS total_ms,
    {", ".join(f"latency_ms['{stage}'] AS {stage}_ms" for stage in STAGES)},
    outcome.cache AS cache_result, outcome.intent_score AS intent_score,
    outcome.fallback_reason AS fallback_reason, question, answer, latency_ms AS stages_ms
FROM telemetry WHERE type = 'turn'
"""
# A quality line written before it carried its own time takes its turn's.
QUALITY_LOGS = f"""
CREATE VIEW quality_logs AS
SELECT to_timestamp(coalesce(q."at", t."at")) AS ts, q."call" AS call_id, q.turn AS turn_id,
    q.source, q.state, q.mode, q.score,
    {", ".join(f"q.parts['{part}'] AS {part}" for part in PARTS)},
    q.parts, coalesce(q.would_be::BOOLEAN, false) AS would_be, q.status, q.window_mean
FROM telemetry q
LEFT JOIN (SELECT "call", turn, max("at") AS "at" FROM telemetry WHERE type = 'turn'
           GROUP BY ALL) t ON q."call" = t."call" AND q.turn = t.turn
WHERE q.type = 'quality'
"""


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def files_of(patterns: Sequence[str]) -> list[str]:
    """The files named, globs expanded (one file per pod, or rotated files); each must exist."""
    files: list[str] = []
    for pattern in patterns:
        matched = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
        if not matched:
            raise ConfigError(f"no telemetry file matches {pattern}")
        for name in matched:
            if not Path(name).is_file():
                raise ConfigError(f"{name}: no such telemetry file")
        files.extend(matched)
    return files


def connect(
    patterns: Sequence[str], now: datetime | Literal["latest"] | None = None
) -> duckdb.DuckDBPyConnection:
    """An in-memory database whose views read the telemetry files named; `now` is what
    `log_now()` returns: the current time (None), a fixed time, or the newest record's."""
    files = files_of(patterns)
    db = duckdb.connect(":memory:")
    db.execute("SET TimeZone = 'UTC'")
    listed = "[" + ", ".join(_literal(name) for name in files) + "]"
    schema = "{" + ", ".join(f"{_literal(k)}: {_literal(v)}" for k, v in COLUMNS.items()) + "}"
    # A line that is not JSON (the last one, half written while the service runs) is skipped
    # and counted (`unreadable_lines`), never failing the query.
    db.execute(
        f"CREATE VIEW telemetry AS SELECT * FROM read_json({listed}, "
        f"format = 'newline_delimited', columns = {schema}, ignore_errors = true)"
    )
    db.execute(LATENCY_LOGS)
    db.execute(QUALITY_LOGS)
    if now == "latest":
        now = latest(db)
    moment = "current_timestamp" if now is None else f"TIMESTAMPTZ {_literal(now.isoformat())}"
    db.execute(f"CREATE MACRO log_now() AS {moment}")
    return db


def unreadable_lines(db: duckdb.DuckDBPyConnection) -> int:
    row = db.execute("SELECT count(*) FROM telemetry WHERE type IS NULL").fetchone()
    return int(row[0]) if row else 0


def latest(db: duckdb.DuckDBPyConnection) -> datetime | None:
    """The newest record's time (None: no record)."""
    row = db.execute('SELECT max(to_timestamp("at")) FROM telemetry').fetchone()
    return row[0] if row else None


def run(db: duckdb.DuckDBPyConnection, query: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    """A query's column names and rows (of its last statement, if it has several)."""
    if not query.strip():
        raise ValueError("no query given")
    try:
        result = db.execute(query)
    except duckdb.Error as exc:
        raise ValueError(str(exc).strip()) from exc
    return [column[0] for column in result.description], result.fetchall()
