"""The questions on-call engineers ask of the telemetry, as SQL over `latency_logs` and
`quality_logs` (sql.py): `voice-agent sql FILE --saved NAME`. LATENCY_DASHBOARD.md shows the
same text (a test holds the two equal), so a team can copy one and change it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SavedQuery:
    name: str
    question: str
    sql: str


SAVED = (
    SavedQuery(
        "first_word_over_time",
        "First-word latency a minute, average and p95, over the last 24 hours",
        """
SELECT time_bucket(INTERVAL 1 MINUTE, ts) AS minute,
       count(*) AS turns,
       round(avg(first_token_ms), 1) AS avg_first_word_ms,
       round(quantile_cont(first_token_ms, 0.95), 1) AS p95_first_word_ms
FROM latency_logs
WHERE ts >= log_now() - INTERVAL 24 HOUR
GROUP BY minute
ORDER BY minute
""",
    ),
    SavedQuery(
        "latency_by_source",
        "First-word latency by response type (source), with each type's share of the turns",
        """
SELECT source,
       count(*) AS turns,
       round(100 * count(*) / sum(count(*)) OVER (), 1) AS share_pct,
       round(avg(first_token_ms), 1) AS avg_ms,
       round(quantile_cont(first_token_ms, 0.50), 1) AS p50_ms,
       round(quantile_cont(first_token_ms, 0.95), 1) AS p95_ms,
       round(quantile_cont(first_token_ms, 0.99), 1) AS p99_ms
FROM latency_logs
WHERE ts >= log_now() - INTERVAL 24 HOUR
GROUP BY source
ORDER BY turns DESC
""",
    ),
    SavedQuery(
        "p95_by_stage",
        "Where the p95 goes: each stage's p95 per source, over the last hour",
        """
SELECT source,
       count(*) AS turns,
       round(quantile_cont(first_token_ms, 0.95), 1) AS first_word_p95_ms,
       round(quantile_cont(embedding_ms, 0.95), 1) AS embedding_p95_ms,
       round(quantile_cont(quick_ms, 0.95), 1) AS quick_p95_ms,
       round(quantile_cont(cache_ms, 0.95), 1) AS cache_p95_ms,
       round(quantile_cont(retrieval_ms, 0.95), 1) AS retrieval_p95_ms,
       round(quantile_cont(llm_first_token_ms, 0.95), 1) AS llm_first_token_p95_ms
FROM latency_logs
WHERE ts >= log_now() - INTERVAL 1 HOUR
GROUP BY source
ORDER BY source
""",
    ),
    SavedQuery(
        "quality_by_source",
        "Quality score by response type over the last 24 hours (would-be answers apart)",
        """
SELECT source,
       would_be,
       count(*) AS scored,
       round(avg(score), 1) AS mean_score,
       round(quantile_cont(score, 0.10), 1) AS p10_score,
       round(avg(relevance), 3) AS relevance,
       round(avg(grounding), 3) AS grounding
FROM quality_logs
WHERE ts >= log_now() - INTERVAL 24 HOUR
GROUP BY source, would_be
ORDER BY source, would_be
""",
    ),
    SavedQuery(
        "degraded_windows_24h",
        "Five-minute windows in the last 24 hours where a source's quality was degraded or poor",
        """
SELECT source,
       CASE rank WHEN 2 THEN 'poor' ELSE 'degraded' END AS worst_status,
       count(*) AS windows
FROM (
    SELECT source,
           time_bucket(INTERVAL 5 MINUTE, ts) AS window_start,
           max(CASE status WHEN 'poor' THEN 2 WHEN 'degraded' THEN 1 ELSE 0 END) AS rank
    FROM quality_logs
    WHERE ts >= log_now() - INTERVAL 24 HOUR
    GROUP BY source, window_start
)
WHERE rank > 0
GROUP BY source, rank
ORDER BY source, rank DESC
""",
    ),
    SavedQuery(
        "slowest_turns",
        "The 20 slowest first words of the last hour, with their calls and stages",
        """
SELECT ts, call_id, turn_id, source, state,
       round(first_token_ms, 1) AS first_word_ms,
       fallback_reason, stages_ms
FROM latency_logs
WHERE ts >= log_now() - INTERVAL 1 HOUR
ORDER BY first_token_ms DESC
LIMIT 20
""",
    ),
)
BY_NAME = {query.name: query for query in SAVED}
