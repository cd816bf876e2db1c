"""What the admin endpoints do to a running service: ingest's aftermath, warming and flushing
the cache, scoring an answer, and the live figures of /health."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from voice_agent.cache.warming import (
    WarmAnswer,
    faq_pairs,
)
from voice_agent.errors import CacheBackendError
from voice_agent.server.service import Service
from voice_agent.telemetry.quality import score_texts

log = logging.getLogger(__name__)


async def after_ingest(service: Service) -> int:
    """The knowledge base changed: answers made from the old one are dropped, and its FAQ
    pairs are warmed again. Returns how many cached answers were dropped."""
    if service.cache is None:
        return 0
    dropped = service.cache.cache.keep_only_knowledge(service.knowledge.fingerprint)
    if service.settings.cache_warm_faq:
        await warm_cache(service, faq_pairs(service.knowledge.documents))
    return dropped


async def warm_cache(service: Service, answers: Sequence[WarmAnswer]) -> int:
    """Store ready answers (FAQ pairs, a warm file's) under the current knowledge base, in
    the answering states they name; returns how many were stored."""
    if service.cache is None or not answers:
        return 0
    questions = await service.encoder.encode_many([a.question for a in answers])
    replies = await service.encoder.encode_many([a.answer for a in answers])
    return service.cache.warm(answers, service.cache_scopes(), list(questions), list(replies))


async def flush_cache(service: Service) -> dict[str, object]:
    """Empty this process's cache and, through Redis, every other process's."""
    if service.cache is None:
        return {"flushed": 0, "shared": None}
    flushed = service.cache.cache.flush()
    shared: str | None = None
    if service.cache.shared is not None:
        try:
            await service.cache.shared.flush()
            shared = "flushed"
        except CacheBackendError as exc:
            log.warning("cache flush did not reach Redis: %s", exc)
            shared = f"unavailable: {exc}"
    return {"flushed": flushed, "shared": shared}


async def score(
    service: Service, question: str, answer: str, context: str | list[str] | None
) -> dict[str, Any]:
    """The quality score of an answer, with its parts (see voice_agent/quality/score.py)."""
    texts = [context] if isinstance(context, str) else list(context or [])
    passages = [p.strip() for text in texts for p in text.split("\n\n") if p.strip()]
    result = await score_texts(
        service.encoder.encode_many, question, answer, passages if context is not None else None
    )
    return {"score": result.score, "parts": result.parts, "notes": result.notes}


def live_stats(service: Service) -> dict[str, object]:
    """What /health reports: latency, tier mix, cache hit rate, quality per source."""
    return {
        "flags": service.flags.as_dict(),
        "flags_source": (
            service.fleet_flags.status()
            if service.fleet_flags is not None
            else {"shared": False, "version": service.flags.version}
        ),
        "latency_ms": service.latency.snapshot(),
        "latency_alerting": sorted(service.latency_slo.alerting) if service.latency_slo else [],
        "latency_by_state_and_mode": service.latency.by_state_and_mode(),
        "tier_mix": service.latency.tier_mix(),
        "cache_hit_rate": service.latency.cache_hit_rate(),
        "quality": service.quality.snapshot(),
        "quality_by_state": service.quality.by_state(),
        "quality_scoring": {
            "scored": service.quality.scored,
            "skipped": service.quality.skipped,
            **service.quality.sampler.snapshot(),
        },
        "encoder_load": service.encoder.load.as_dict(),
        "breaker": service.breaker.state,
        "llm_process": service.llm_status(),
        "cache": cache_status(service),
    }


def cache_status(service: Service) -> dict[str, object] | None:
    if service.cache is None:
        return None
    status: dict[str, object] = {"entries": len(service.cache.cache)}
    shared = service.cache.shared
    if shared is not None:
        stats = shared.stats
        status["shared"] = {
            "connected": stats.connected,
            "published": stats.published,
            "applied": stats.applied,
            "dropped": stats.dropped,
            "errors": stats.errors,
        }
    return status
