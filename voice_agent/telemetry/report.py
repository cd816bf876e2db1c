"""`voice-agent report TELEMETRY.jsonl`: a shadow or canary period compared, as Markdown with
PNG charts: the served path's latency against the would-be optimized path's, quality per
response type, the cache hit rate, LLM calls and tokens saved with their estimated cost, and
the worst turns with their call ids.

Tokens are estimated (4 characters a token) from the answers, plus a stated prompt size per
LLM call; the price is per million tokens. Both are options because they depend on the model.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

FAST = ("quick", "cache")
CHARS_PER_TOKEN = 4


@dataclass(frozen=True, slots=True)
class Pricing:
    prompt_tokens: int = 600  # per LLM call: system prompt, task, passages, history
    usd_per_million_tokens: float = 0.60


def read(path: Path) -> list[dict[str, Any]]:
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}:{number}: not JSON ({exc})") from exc
    return rows


def _spread(values: list[float]) -> tuple[float, float, float] | None:
    """p50, p95 and p99 (None: no values)."""
    if not values:
        return None
    p50, p95, p99 = np.percentile(values, [50, 95, 99])
    return float(p50), float(p95), float(p99)


def _percentiles(values: list[float]) -> str:
    spread = _spread(values)
    if spread is None:
        return "- | - | -"
    p50, p95, p99 = spread
    return f"{p50:.1f} | {p95:.1f} | {p99:.1f}"


def _answered(turns: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Turns the tiers answered (not the flow's own lines), told by their source, so a file
    written with transcripts off (no question kept) counts the same turns."""
    return [t for t in turns if t["source"] != "flow"]


def summarize(rows: list[dict[str, Any]], pricing: Pricing) -> dict[str, Any]:
    turns = _answered(r for r in rows if r["type"] == "turn")
    quality = [r for r in rows if r["type"] == "quality"]
    shadow = {(r["call"], r["turn"]): r for r in rows if r["type"] == "shadow"}
    served_ms = [t["latency_ms"]["first_token"] for t in turns]
    # The would-be path: the fast tier's latency where it would have answered, the served
    # latency elsewhere (those turns would have gone to the LLM anyway).
    would_be_ms = [
        t["would_be"]["latency_ms"] if t.get("would_be") else t["latency_ms"]["first_token"]
        for t in turns
    ]
    fast_turns = [t for t in turns if t["source"] in FAST or t.get("would_be")]
    cache_hits = [
        t
        for t in turns
        if t["source"] == "cache" or (t.get("would_be") or {}).get("source") == "cache"
    ]
    llm_answers = [t["answer"] for t in turns if t["source"] == "llm"]
    answer_tokens = (
        sum(len(a) for a in llm_answers) / len(llm_answers) / CHARS_PER_TOKEN if llm_answers else 0
    )
    tokens_saved = len(fast_turns) * (pricing.prompt_tokens + answer_tokens)
    by_source: dict[str, list[float]] = defaultdict(list)
    for q in quality:
        name = f"{q['source']} (would-be)" if q.get("would_be") else q["source"]
        by_source[name].append(q["score"])
    worst = sorted(quality, key=lambda q: q["score"])[:10]
    return {
        "turns": turns,
        "calls": len({t["call"] for t in turns}),
        "modes": sorted({t["mode"] for t in turns}),
        "served_ms": served_ms,
        "would_be_ms": would_be_ms,
        "served_by_source": {
            s: [t["latency_ms"]["first_token"] for t in turns if t["source"] == s]
            for s in sorted({t["source"] for t in turns})
        },
        "fast_turns": len(fast_turns),
        "cache_hits": len(cache_hits),
        "tokens_saved": tokens_saved,
        "cost_saved": tokens_saved * pricing.usd_per_million_tokens / 1e6,
        "quality": dict(sorted(by_source.items())),
        "worst": worst,
        "shadow": shadow,
        "similarities": [r["similarity"] for r in shadow.values()],
    }


def _charts(summary: dict[str, Any], out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = []
    fig, ax = plt.subplots(figsize=(7, 4))
    bins = [float(b) for b in np.logspace(-1, 4, 40)]
    ax.hist(summary["served_ms"], bins=bins, alpha=0.6, label="served")
    ax.hist(summary["would_be_ms"], bins=bins, alpha=0.6, label="would-be (fast tiers)")
    ax.set_xscale("log")
    ax.set_xlabel("first word, ms (log scale)")
    ax.set_ylabel("turns")
    ax.legend()
    ax.set_title("Latency: served path against the optimized path")
    fig.tight_layout()
    fig.savefig(out / "latency.png", dpi=100)
    plt.close(fig)
    names.append("latency.png")
    if summary["quality"]:
        fig, ax = plt.subplots(figsize=(7, 4))
        sources = list(summary["quality"])
        ax.boxplot([summary["quality"][s] for s in sources], tick_labels=sources)
        ax.set_ylabel("quality score (0-100)")
        ax.set_title("Quality per response type")
        fig.tight_layout()
        fig.savefig(out / "quality.png", dpi=100)
        plt.close(fig)
        names.append("quality.png")
    return names


def write(rows: list[dict[str, Any]], out: Path, pricing: Pricing, source: str) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    s = summarize(rows, pricing)
    _charts(s, out)
    turns = s["turns"]
    lines = [
        "# Shadow / canary report",
        "",
        f"From `{source}`: {len(turns)} answered turns over {s['calls']} calls, "
        f"modes {', '.join(s['modes']) or '-'}.",
        "",
        "## Latency (first word, ms)",
        "",
        "| path | turns | p50 | p95 | p99 |",
        "|---|---|---|---|---|",
        f"| served | {len(s['served_ms'])} | {_percentiles(s['served_ms'])} |",
        f"| would-be (fast tiers where they would answer) | {len(s['would_be_ms'])} | "
        f"{_percentiles(s['would_be_ms'])} |",
    ]
    for name, values in s["served_by_source"].items():
        lines.append(f"| served by {name} | {len(values)} | {_percentiles(values)} |")
    lines += ["", "![latency](latency.png)", "", "## Quality per response type", ""]
    lines += _quality_lines(s)
    similarities = s["similarities"]
    lines += [
        "",
        "## Fast tiers and the LLM",
        "",
        f"- Turns the fast tiers answered or would have answered: {s['fast_turns']} of "
        f"{len(turns)} ({s['fast_turns'] / max(len(turns), 1):.0%}).",
        f"- Cache hit rate: {s['cache_hits']} of {len(turns)} "
        f"({s['cache_hits'] / max(len(turns), 1):.0%}).",
        f"- LLM calls saved: {s['fast_turns']}; tokens saved about {s['tokens_saved']:,.0f} "
        f"({pricing.prompt_tokens} prompt tokens a call plus the average answer), estimated "
        f"cost saved ${s['cost_saved']:.4f} at ${pricing.usd_per_million_tokens} per million.",
    ]
    if similarities:
        lines.append(
            f"- Shadow comparisons: {len(similarities)}; similarity of the would-be answer to "
            f"the served one: median {np.median(similarities):.2f}, lowest "
            f"{min(similarities):.2f}."
        )
    lines += ["", "## Worst turns by quality", ""]
    if s["worst"]:
        lines += ["| call | turn | source | state | score |", "|---|---|---|---|---|"]
        lines += [
            f"| {w['call']} | {w['turn']} | {w['source']} | {w['state']} | {w['score']} |"
            for w in s["worst"]
        ]
    report = out / "report.md"
    report.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return report


def _quality_lines(s: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    if s["quality"]:
        lines += ["| source | scored | mean | p10 |", "|---|---|---|---|"]
        for name, scores in s["quality"].items():
            lines.append(
                f"| {name} | {len(scores)} | {np.mean(scores):.1f} | "
                f"{np.percentile(scores, 10):.1f} |"
            )
        lines += ["", "![quality](quality.png)"]
    else:
        lines.append("No quality scores in this file.")
    return lines


def figures(rows: list[dict[str, Any]], pricing: Pricing) -> dict[str, Any]:
    """The report's figures as JSON, for the dashboard's live comparison of recent turns."""
    s = summarize(rows, pricing)
    turns = max(len(s["turns"]), 1)

    def spread(values: list[float]) -> dict[str, float] | None:
        found = _spread(values)
        if found is None:
            return None
        p50, p95, p99 = (round(p, 1) for p in found)
        return {"n": len(values), "p50": p50, "p95": p95, "p99": p99}

    similarities = s["similarities"]
    return {
        "turns": len(s["turns"]),
        "calls": s["calls"],
        "modes": s["modes"],
        "served": spread(s["served_ms"]),
        "would_be": spread(s["would_be_ms"]),
        "served_by_source": {k: spread(v) for k, v in s["served_by_source"].items()},
        "quality": {
            k: {
                "n": len(v),
                "mean": round(float(np.mean(v)), 1),
                "p10": round(float(np.percentile(v, 10)), 1),
            }
            for k, v in s["quality"].items()
        },
        "fast_share": round(s["fast_turns"] / turns, 3),
        "cache_hit_rate": round(s["cache_hits"] / turns, 3),
        "llm_calls_saved": s["fast_turns"],
        "tokens_saved": round(s["tokens_saved"]),
        "cost_saved_usd": round(s["cost_saved"], 4),
        "shadow_similarity": (
            {
                "n": len(similarities),
                "median": round(float(np.median(similarities)), 3),
                "lowest": round(float(min(similarities)), 3),
            }
            if similarities
            else None
        ),
    }
