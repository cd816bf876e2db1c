"""SQL over the telemetry file, on a recorded run: every saved on-call query (and so every query
LATENCY_DASHBOARD.md shows) gives what the same question computed in Python from the raw lines
gives.

The recording (data/recorded_run.jsonl) is the service's own file from three load runs of
2026-12-06, 216 turns: small talk, FAQ paraphrases and knowledge-base questions over a model
stand-in answering in 0.3 s; 12 calls over one answering in 4 s (fallbacks, and the fallback
source's quality poor); 8 calls in shadow mode (would-be answers scored, shadow comparisons).
Remade with:

    VOICE_AGENT_TELEMETRY_FILE=run.jsonl .venv/bin/python bench/concurrency.py \\
        --levels 16 --turns 6 --pause-s 0.5
    VOICE_AGENT_TELEMETRY_FILE=run.jsonl .venv/bin/python bench/concurrency.py \\
        --levels 12 --turns 6 --pause-s 0.5 --model-first-token-s 4
    LATENCY_OPTIMIZATION_MODE=shadow VOICE_AGENT_TELEMETRY_FILE=run.jsonl \\
        .venv/bin/python bench/concurrency.py --levels 8 --turns 6 --pause-s 0.5
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from voice_agent.cli import main
from voice_agent.errors import ConfigError
from voice_agent.telemetry import sql
from voice_agent.telemetry.queries import BY_NAME, SAVED

ROOT = Path(__file__).resolve().parents[2]
RECORDED = Path(__file__).parent / "data" / "recorded_run.jsonl"
LINES = [json.loads(line) for line in RECORDED.read_text().splitlines()]
TURNS = [r for r in LINES if r["type"] == "turn"]
SCORES = [r for r in LINES if r["type"] == "quality"]
LATEST = datetime.fromtimestamp(max(r["at"] for r in LINES if "at" in r), UTC)


def saved(name: str, now: datetime | None = LATEST) -> list[dict[str, Any]]:
    db = sql.connect([str(RECORDED)], now)
    columns, rows = sql.run(db, BY_NAME[name].sql)
    return [dict(zip(columns, row, strict=True)) for row in rows]


def by(records: list[dict[str, Any]], key: str) -> dict[str, list[dict[str, Any]]]:
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        groups[record[key]].append(record)
    return groups


def p(values: list[float], q: float) -> float:
    return round(float(np.percentile(values, q)), 1)  # linear, as quantile_cont


def close(a: float | None, b: float | None) -> bool:
    return a is not None and b is not None and abs(a - b) <= 0.051  # rounding rules differ


def test_the_recording_has_every_source_and_a_poor_window() -> None:
    assert {r["source"] for r in TURNS} == {"quick", "cache", "llm", "fallback"}
    assert {r.get("status") for r in SCORES} == {"good", "degraded", "poor"}


def test_latency_by_source_matches_the_lines() -> None:
    rows = {row["source"]: row for row in saved("latency_by_source")}
    groups = by(TURNS, "source")
    assert set(rows) == set(groups)
    for source, turns in groups.items():
        first = [t["latency_ms"]["first_token"] for t in turns]
        row = rows[source]
        assert row["turns"] == len(turns)
        assert close(row["share_pct"], 100 * len(turns) / len(TURNS))
        assert close(row["avg_ms"], float(np.mean(first)))
        for column, q in (("p50_ms", 50), ("p95_ms", 95), ("p99_ms", 99)):
            assert close(row[column], p(first, q)), (source, column)


def test_first_word_over_time_buckets_by_minute() -> None:
    rows = saved("first_word_over_time")
    minutes: dict[datetime, list[float]] = defaultdict(list)
    for turn in TURNS:
        at = datetime.fromtimestamp(turn["at"], UTC).replace(second=0, microsecond=0)
        minutes[at].append(turn["latency_ms"]["first_token"])
    assert [row["minute"] for row in rows] == sorted(minutes)
    for row in rows:
        values = minutes[row["minute"]]
        assert row["turns"] == len(values)
        assert close(row["avg_first_word_ms"], float(np.mean(values)))
        assert close(row["p95_first_word_ms"], p(values, 95))


def test_the_last_24_hours_are_counted_back_from_log_now() -> None:
    assert saved("first_word_over_time", LATEST + timedelta(hours=23)) != []
    assert saved("first_word_over_time", LATEST + timedelta(hours=25)) == []
    assert saved("slowest_turns", LATEST + timedelta(hours=2)) == []


def test_p95_by_stage_leaves_out_stages_that_did_not_run() -> None:
    rows = {row["source"]: row for row in saved("p95_by_stage")}
    for source, turns in by(TURNS, "source").items():
        embedding = [t["latency_ms"]["embedding"] for t in turns if "embedding" in t["latency_ms"]]
        assert close(rows[source]["embedding_p95_ms"], p(embedding, 95))
        llm = [t["latency_ms"]["llm_first_token"] for t in turns
               if "llm_first_token" in t["latency_ms"]]  # fmt: skip
        if llm:
            assert close(rows[source]["llm_first_token_p95_ms"], p(llm, 95))
        else:
            assert rows[source]["llm_first_token_p95_ms"] is None


def test_quality_by_source_matches_the_scores_and_keeps_would_be_answers_apart() -> None:
    rows = {(row["source"], row["would_be"]): row for row in saved("quality_by_source")}
    groups: dict[tuple[str, bool], list[dict[str, Any]]] = defaultdict(list)
    for score in SCORES:
        groups[(score["source"], score["would_be"])].append(score)
    assert set(rows) == set(groups) and any(would_be for _, would_be in groups)
    for key, scores in groups.items():
        row = rows[key]
        assert row["scored"] == len(scores)
        assert close(row["mean_score"], float(np.mean([s["score"] for s in scores])))
        relevance = [s["parts"]["relevance"] for s in scores]
        assert row["relevance"] == pytest.approx(np.mean(relevance), abs=0.0006)


def test_shadow_turns_and_their_comparisons_read_as_written() -> None:
    db = sql.connect([str(RECORDED)])
    _, modes = sql.run(db, "SELECT mode, count(*) FROM latency_logs GROUP BY mode ORDER BY mode")
    assert modes == sorted(Counter(t["mode"] for t in TURNS).items())
    _, shadow = sql.run(db, "SELECT count(*) FROM telemetry WHERE type = 'shadow'")
    assert shadow == [(sum(r["type"] == "shadow" for r in LINES),)] and shadow[0][0] > 0


def test_degraded_windows_count_five_minute_windows_at_their_worst() -> None:
    worst: dict[tuple[str, int], int] = {}
    rank = {"good": 0, "degraded": 1, "poor": 2}
    for score in SCORES:
        window = int(score["at"] // 300)
        key = (score["source"], window)
        worst[key] = max(worst.get(key, 0), rank[score["status"]])
    expected: dict[tuple[str, str], int] = defaultdict(int)
    for (source, _), level in worst.items():
        if level:
            expected[(source, "poor" if level == 2 else "degraded")] += 1
    rows = saved("degraded_windows_24h")
    assert {(r["source"], r["worst_status"]): r["windows"] for r in rows} == dict(expected)
    assert expected  # the recording has a poor window


def test_slowest_turns_are_the_slowest() -> None:
    rows = saved("slowest_turns")
    slowest = sorted(TURNS, key=lambda t: -t["latency_ms"]["first_token"])[:20]
    assert [(r["call_id"], r["turn_id"]) for r in rows] == [(t["call"], t["turn"]) for t in slowest]


def test_the_dashboard_doc_shows_the_saved_queries_as_they_are() -> None:
    doc = (ROOT / "LATENCY_DASHBOARD.md").read_text()
    shown = [block.strip() for block in re.findall(r"```sql\n(.*?)```", doc, re.S)]
    assert shown == [query.sql.strip() for query in SAVED]


def test_unreadable_lines_are_skipped_and_counted(tmp_path: Path) -> None:
    log = tmp_path / "telemetry.jsonl"
    log.write_text(RECORDED.read_text() + "not json\n" + '{"type":"turn","call":"x","tu')
    db = sql.connect([str(log)])
    assert sql.unreadable_lines(db) == 2
    _, rows = sql.run(db, "SELECT count(*) FROM latency_logs")
    assert rows == [(len(TURNS),)]


def test_several_files_read_as_one_and_a_missing_one_is_named(tmp_path: Path) -> None:
    for pod in ("a", "b"):
        (tmp_path / f"pod-{pod}.jsonl").write_text(RECORDED.read_text())
    db = sql.connect([str(tmp_path / "pod-*.jsonl")])
    _, rows = sql.run(db, "SELECT count(*) FROM quality_logs")
    assert rows == [(2 * len(SCORES),)]
    with pytest.raises(ConfigError, match="no telemetry file matches"):
        sql.connect([str(tmp_path / "none-*.jsonl")])
    with pytest.raises(ConfigError, match="no such telemetry file"):
        sql.connect([str(tmp_path / "missing.jsonl")])


def test_the_command_prints_a_saved_query_and_refuses_bad_sql(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["sql", str(RECORDED), "--saved", "latency_by_source", "--now", "latest",
                 "--format", "json"]) == 0  # fmt: skip
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {row["source"] for row in printed} == {"quick", "cache", "llm", "fallback"}
    assert main(["sql", str(RECORDED), "-q", "SELECT nothing FROM latency_logs"]) == 2
    assert "nothing" in capsys.readouterr().err
    assert main(["sql", str(RECORDED), "--saved", "nope"]) == 2
    assert main(["sql", str(RECORDED), "-q", "  "]) == 2
    assert "no query given" in capsys.readouterr().err
    assert main(["sql", str(RECORDED), "-q", "SELECT 1", "--now", "2026-12-06T10:00"]) == 2
    assert "time zone" in capsys.readouterr().err
