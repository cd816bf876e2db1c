"""Structured log lines per turn: `[LATENCY]` (timings), `[CACHE]` (hit or miss, for turns the
cache saw) and `[TELEMETRY]` (everything measured, as one JSON object)."""

from __future__ import annotations

import json
import logging
from typing import Any

from voice_agent.telemetry.event import TurnEvent

log = logging.getLogger("voice_agent.telemetry")


def _pairs(values: dict[str, object]) -> str:
    return " ".join(f"{key}={value}" for key, value in values.items())


def _head(event: TurnEvent) -> dict[str, Any]:
    """What names a turn in every line and record."""
    return {
        "call": event.call_id,
        "turn": event.turn_id,
        "source": event.source,
        "flow": event.flow,
        "state": event.state,
        "mode": event.mode,
    }


def turn_record(event: TurnEvent) -> dict[str, Any]:
    """Everything measured about a turn, as one JSON-ready object."""
    record: dict[str, Any] = {
        **_head(event),
        "at": round(event.at, 3),
        "question": event.question,
        "answer": event.answer,
        "latency_ms": dict(event.latency_ms),
        "detail": dict(event.detail),
    }
    outcome = {
        "cache": event.cache,
        "intent_score": event.intent_score,
        "fallback_reason": event.fallback_reason,
    }
    # The typed facts of the answer, for code that reads the record; `detail` is for people.
    record["outcome"] = {k: v for k, v in outcome.items() if v is not None}
    if event.would_be is not None:
        record["would_be"] = {
            "source": event.would_be.source,
            "answer": event.would_be.answer,
            "latency_ms": event.would_be.latency_ms,
        }
    return record


class LogLines:
    def turn_served(self, event: TurnEvent) -> None:
        head = _head(event)
        timings = {f"{k}_ms": v for k, v in event.latency_ms.items()}
        log.info("[LATENCY] %s", _pairs({**head, **timings}))
        if event.cache is not None:
            # The line's figures are the tier's debug output; whether it hit is the event's.
            shown = event.detail.get("cache")
            shown = shown if isinstance(shown, dict) else {}
            if event.cache == "miss":
                miss = shown.get("miss", {})
                log.info("[CACHE] %s", _pairs({**head, "result": "miss", **miss}))
            else:
                fields = {k: shown[k] for k in ("kind", "similarity", "age_s") if k in shown}
                log.info("[CACHE] %s", _pairs({**head, "result": "hit", **fields}))
        record = turn_record(event)
        log.info("[TELEMETRY] %s", json.dumps(record, separators=(",", ":"), default=str))
