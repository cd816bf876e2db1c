"""Everything a running service shares across calls, built once at start-up: the encoder, the
knowledge base and its indexes, the LLM client, the circuit breaker and the responder chain."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from redis.exceptions import RedisError

from quick_responses.head import IntentHead, head_path
from quick_responses.intents import IntentMatcher
from quick_responses.pack import PackError, load_pack
from quick_responses.responder import QuickResponder
from voice_agent.cache.policy import CachePolicy
from voice_agent.cache.shared import SharedCache, SharedCacheConfig
from voice_agent.cache.store import CacheScope, ResponseCache
from voice_agent.cache.warming import (
    WarmAnswer,
    answering_scopes,
    faq_pairs,
    read_warm_file,
)
from voice_agent.call.session import CallConfig, CallDeps
from voice_agent.errors import ConfigError
from voice_agent.flags import Flags, FlagsPatch, FlagStore
from voice_agent.flows import FlowLibrary
from voice_agent.llm.circuit_breaker import CircuitBreaker
from voice_agent.llm.local import LocalModel, bundled_model_path, model_server_command
from voice_agent.llm.supervisor import SupervisorConfig
from voice_agent.rag.documents import load_documents
from voice_agent.rag.encoder import (
    Encoder,
    bundled_adapter_path,
    load_sentence_model,
    single_threaded_blas,
)
from voice_agent.rag.knowledge_base import KnowledgeBase
from voice_agent.server.intent_packs import build_matcher, load_intent_packs
from voice_agent.settings import LLMBackend, Settings
from voice_agent.telemetry.event import Telemetry
from voice_agent.telemetry.file import TelemetryFile
from voice_agent.telemetry.latency import LatencyTracker
from voice_agent.telemetry.log import LogLines
from voice_agent.telemetry.metrics import DogStatsdMetrics, PrometheusMetrics
from voice_agent.telemetry.quality import QualityAlert, QualityTracker, score_texts
from voice_agent.telemetry.shadow import ShadowRecorder
from voice_agent.telemetry.stream import TelemetryStream
from voice_agent.tiers.cache import CacheTier
from voice_agent.tiers.chain import ResponderChain
from voice_agent.tiers.knowledge import KnowledgeConfig, KnowledgeTier
from voice_agent.tiers.quick import QuickTier
from voice_agent.types import Budgets, LLMClient, Tier

log = logging.getLogger(__name__)

DEFAULT_OPENAI_MODEL = "gpt-4o-mini"


@dataclass
class Service:
    settings: Settings
    encoder: Encoder
    knowledge: KnowledgeBase
    llm: LLMClient
    breaker: CircuitBreaker
    responder: ResponderChain
    flows: FlowLibrary
    intents: IntentMatcher
    cache: CacheTier | None = None
    flags: FlagStore | None = None
    latency: LatencyTracker = field(default_factory=LatencyTracker)
    quality: QualityTracker | None = None
    shadow: ShadowRecorder = field(init=False)
    prometheus: PrometheusMetrics = field(init=False)
    statsd: DogStatsdMetrics | None = field(init=False)
    telemetry_file: TelemetryFile | None = field(init=False)
    stream: TelemetryStream = field(init=False)
    telemetry: Telemetry = field(default_factory=Telemetry)
    # Models handed in to build_service (tests, benches) belong to whoever handed them in.
    owns_encoder: bool = True
    owns_llm: bool = True

    @property
    def call_config(self) -> CallConfig:
        return CallConfig(
            mode=self.settings.mode.value,
            fallback_text=self.settings.fallback_text,
            budgets=knowledge_config(self.settings).budgets,
            context={"business": self.settings.business_name},
            cancel_wait_s=self.settings.cancel_wait_s,
            speculate=self.settings.speculate_partials,
        )

    def __post_init__(self) -> None:
        settings = self.settings
        if self.flags is None:
            self.flags = FlagStore(initial_flags(settings), settings.audit_log)
        if self.quality is None:
            self.quality = QualityTracker(
                self.encoder.encode_many,
                settings.quality_baseline_score,
                settings.quality_alert_threshold,
                window=settings.quality_window_turns,
                min_turns=min(10, settings.quality_window_turns),
            )
        if settings.auto_rollback:
            self.quality.listeners.append(self._roll_back)
        self.shadow = ShadowRecorder(self.encoder.encode_many)
        self.prometheus = PrometheusMetrics()
        self.statsd = (
            DogStatsdMetrics(settings.dd_agent_host, settings.dd_dogstatsd_port)
            if settings.dd_agent_host
            else None
        )
        exporters: list[PrometheusMetrics | DogStatsdMetrics] = [self.prometheus]
        if self.statsd is not None:
            exporters.append(self.statsd)
        for exporter in exporters:
            self.quality.score_listeners.append(exporter.quality_scored)
        self.telemetry.observers.extend(
            [self.latency, LogLines(), self.quality, self.shadow, *exporters]
        )
        self.stream = TelemetryStream()
        self.telemetry.observers.append(self.stream)
        self.telemetry_file = (
            TelemetryFile(settings.telemetry_file) if settings.telemetry_file else None
        )
        if self.telemetry_file is not None:
            self.telemetry.observers.append(self.telemetry_file)
            self.quality.score_listeners.append(self.telemetry_file.quality_scored)
            self.shadow.listeners.append(self.telemetry_file.shadow_compared)
        if self.cache is not None:
            cache = self.cache.cache

            def follow_threshold(flags: Flags) -> None:
                cache.policy = replace(cache.policy, threshold=flags.cache_threshold)

            self.flags.on_change(follow_threshold)

    @property
    def call_deps(self) -> CallDeps:
        return CallDeps(
            self.responder,
            self.flows,
            self.intents,
            self.encoder.embed,
            self.telemetry,
            self.flags,
            self.knowledge,
        )

    def _roll_back(self, alert: QualityAlert) -> None:
        """The fast path's answers got poor: serve the LLM path (shadow) until an engineer
        switches back. The audit log says why."""
        assert self.flags is not None and self.quality is not None
        if alert.status != "poor" or alert.source not in ("quick", "cache"):
            return
        if self.flags.current.mode != "enabled":
            return
        why = (
            f"auto-rollback: {alert.source} answers poor (mean {alert.mean} over "
            f"{alert.window} turns, baseline {self.quality.baseline})"
        )
        self.flags.change(FlagsPatch(mode="shadow"), who=why, must_record=False)
        self.quality.reset(alert.source)
        log.warning("[QUALITY_ALERT] switched to shadow: %s", why)

    async def start(self) -> None:
        """Start background work that needs the event loop (the shared cache's tasks, the
        local model's supervisor)."""
        if self.cache is not None and self.cache.shared is not None:
            await self.cache.shared.start()
        if isinstance(self.llm, LocalModel):
            self.llm.supervise()

    def llm_status(self) -> dict[str, object] | None:
        """The local model's process (state, pid, restarts, last exit); None for a hosted one."""
        return self.llm.status() if isinstance(self.llm, LocalModel) else None

    async def after_ingest(self) -> int:
        """The knowledge base changed: answers made from the old one are dropped, and its FAQ
        pairs are warmed again. Returns how many cached answers were dropped."""
        if self.cache is None:
            return 0
        dropped = self.cache.cache.keep_only_knowledge(self.knowledge.fingerprint)
        if self.settings.cache_warm_faq:
            await self.warm_cache(faq_pairs(self.knowledge.documents))
        return dropped

    async def warm_cache(self, answers: Sequence[WarmAnswer]) -> int:
        """Store ready answers (FAQ pairs, a warm file's) under the current knowledge base, in
        the answering states they name; returns how many were stored."""
        if self.cache is None or not answers:
            return 0
        questions = await self.encoder.encode_many([a.question for a in answers])
        replies = await self.encoder.encode_many([a.answer for a in answers])
        return self.cache.warm(answers, self._answering_scopes(), list(questions), list(replies))

    async def flush_cache(self) -> dict[str, object]:
        """Empty this process's cache and, through Redis, every other process's."""
        if self.cache is None:
            return {"flushed": 0, "shared": None}
        flushed = self.cache.cache.flush()
        shared: str | None = None
        if self.cache.shared is not None:
            try:
                await self.cache.shared.flush()
                shared = "flushed"
            except (RedisError, OSError) as exc:
                log.warning("cache flush did not reach Redis: %s", exc)
                shared = f"unavailable: {exc}"
        return {"flushed": flushed, "shared": shared}

    async def score(
        self, question: str, answer: str, context: str | list[str] | None
    ) -> dict[str, Any]:
        """The quality score of an answer, with its parts (see quality.py)."""
        texts = [context] if isinstance(context, str) else list(context or [])
        passages = [p.strip() for text in texts for p in text.split("\n\n") if p.strip()]
        result = await score_texts(
            self.encoder.encode_many, question, answer, passages if context is not None else None
        )
        return {"score": result.score, "parts": result.parts, "notes": result.notes}

    def live_stats(self) -> dict[str, object]:
        """What /health reports: latency, tier mix, cache hit rate, quality per source."""
        assert self.flags is not None
        return {
            "flags": self.flags.as_dict(),
            "latency_ms": self.latency.snapshot(),
            "latency_by_state_and_mode": self.latency.by_state_and_mode(),
            "tier_mix": self.latency.tier_mix(),
            "cache_hit_rate": self.latency.cache_hit_rate(),
            "quality": self.quality.snapshot() if self.quality is not None else None,
            "quality_by_state": self.quality.by_state() if self.quality is not None else None,
            "quality_scoring": (
                {"scored": self.quality.scored, "skipped": self.quality.skipped}
                if self.quality is not None
                else None
            ),
            "breaker": self.breaker.state,
            "llm_process": self.llm_status(),
            "cache": self.cache_status(),
        }

    def cache_status(self) -> dict[str, object] | None:
        if self.cache is None:
            return None
        status: dict[str, object] = {"entries": len(self.cache.cache)}
        shared = self.cache.shared
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

    def _answering_scopes(self) -> list[CacheScope]:
        return answering_scopes(
            self.flows.flows.values(), self.knowledge.fingerprint, self.settings.language
        )

    async def aclose(self) -> None:
        if self.quality is not None:
            await self.quality.drain(1.0)
        await self.shadow.drain(1.0)
        if self.statsd is not None:
            self.statsd.close()
        if self.telemetry_file is not None:
            self.telemetry_file.close()
        if self.cache is not None:
            await self.cache.drain(1.0)
            if self.cache.shared is not None:
                await self.cache.shared.aclose()
        closer: Any = getattr(self.llm, "close", None) if self.owns_llm else None
        if closer is not None:
            result = closer()
            if inspect.isawaitable(result):
                await result
        if self.owns_encoder:
            await self.encoder.aclose()


def initial_flags(settings: Settings) -> Flags:
    return Flags(
        mode=settings.mode.value,
        rollout_percent=settings.rollout_percent,
        quick_responses=settings.quick_responses_enabled,
        response_cache=settings.response_cache_enabled,
        cache_threshold=settings.cache_threshold,
        first_token_budget_s=settings.first_token_budget_s,
        llm_timeout_s=settings.llm_timeout_s,
    )


def local_model_path(settings: Settings) -> Path:
    """VOICE_AGENT_LLM_MODEL, or the bundled GGUF when it is empty."""
    return Path(settings.llm_model) if settings.llm_model else bundled_model_path()


def model_supervisor_config(settings: Settings) -> SupervisorConfig:
    """How the local model's process is started and watched."""
    return SupervisorConfig(
        model_server_command(
            local_model_path(settings),
            n_threads=settings.llm_threads,
            n_ctx=settings.llm_context_tokens,
        ),
        start_timeout_s=settings.llm_start_timeout_s,
        hang_timeout_s=settings.llm_hang_timeout_s,
        backoff_min_s=settings.llm_restart_backoff_s,
        backoff_max_s=max(settings.llm_restart_backoff_max_s, settings.llm_restart_backoff_s),
    )


def build_llm(settings: Settings) -> LLMClient:
    if settings.llm_backend is LLMBackend.OPENAI:
        from voice_agent.llm.openai_client import OpenAILLM

        return OpenAILLM(
            model=settings.llm_model or DEFAULT_OPENAI_MODEL,
            base_url=settings.openai_base_url,
            api_key=settings.openai_api_key,
            timeout_s=settings.llm_timeout_s,
        )
    path = local_model_path(settings)
    local = LocalModel.start(
        path, model_supervisor_config(settings), timeout_s=settings.llm_timeout_s
    )
    log.info("local model: %s in process %s", path.name, local.supervisor.pid)
    return local


def knowledge_config(settings: Settings) -> KnowledgeConfig:
    return KnowledgeConfig(
        business=settings.business_name,
        budgets=Budgets(
            first_token_s=settings.first_token_budget_s,
            stall_s=settings.llm_stall_timeout_s,
            total_s=settings.llm_timeout_s,
        ),
        max_tokens=settings.llm_max_tokens,
        max_sentences=settings.answer_max_sentences,
        prompt_passages=settings.prompt_passages,
        history_turns=settings.history_turns,
        filler_text=settings.filler_text,
        fallback_text=settings.fallback_text,
    )


def encoder_model(adapter: str) -> Any:
    """The sentence model the settings ask for (`VOICE_AGENT_ENCODER_ADAPTER`)."""
    if adapter == "none":
        return load_sentence_model()
    path = bundled_adapter_path() if adapter == "bundled" else Path(adapter).with_suffix("")
    return load_sentence_model(adapter=path)


def build_quick_tier(settings: Settings, encoder: Encoder) -> QuickTier | None:
    """The template pack, its example vectors and (when trained) its intent head."""
    if not settings.quick_responses_enabled:
        return None
    try:
        pack = load_pack(settings.quick_pack)
    except PackError as exc:
        raise ConfigError(f"VOICE_AGENT_QUICK_PACK: {exc}") from exc
    head_file = head_path(settings.quick_pack)
    head = IntentHead.load(head_file) if head_file.exists() else None
    responder = QuickResponder.build(pack, encoder.encode_sync, head=head)
    log.info(
        "quick responses: pack %s, %d intents, scorer %s",
        pack.name,
        len(pack.intents),
        "head" if head else "nearest example",
    )
    return QuickTier(responder, encoder.embed, {"business": settings.business_name})


def build_cache_tier(
    settings: Settings, encoder: Encoder, knowledge: KnowledgeBase, flows: FlowLibrary
) -> CacheTier | None:
    """The response cache, its shared layer when Redis is configured, warmed with the FAQ
    pairs of the knowledge base and the warm file."""
    if not settings.response_cache_enabled:
        return None
    cache = ResponseCache(
        ttl_s=settings.response_cache_ttl_seconds,
        max_entries=settings.cache_max_entries,
        policy=CachePolicy(
            threshold=settings.cache_threshold,
            agree_mass=settings.cache_agree_mass,
            agree_gap=settings.cache_agree_gap,
        ),
    )
    shared = None
    if settings.redis_url:
        config = SharedCacheConfig(
            settings.redis_url,
            max_entries=settings.cache_max_entries,
            timeout_s=settings.redis_timeout_s,
        )
        shared = SharedCache(cache, config)
    tier = CacheTier(
        cache,
        encoder.embed,
        lambda: knowledge.fingerprint,
        shared,
        settings.language,
        min_quality=settings.cache_min_quality,
    )
    answers: list[WarmAnswer] = faq_pairs(knowledge.documents) if settings.cache_warm_faq else []
    if settings.cache_warm_file is not None:
        answers += read_warm_file(settings.cache_warm_file)
    if answers:
        scopes = answering_scopes(flows.flows.values(), knowledge.fingerprint, settings.language)
        stored = tier.warm(
            answers,
            scopes,
            list(encoder.encode_sync([a.question for a in answers])),
            list(encoder.encode_sync([a.answer for a in answers])),
        )
        log.info("response cache: warmed %d answers into %d states", stored, len(scopes))
    return tier


def build_service(
    settings: Settings, *, encoder: Encoder | None = None, llm: LLMClient | None = None
) -> Service:
    """Load models, build indexes, warm up. Slow by design: the per-turn path only looks up.
    An `encoder` and `llm` handed in are shared with the caller, who closes them."""
    owns_encoder, owns_llm = encoder is None, llm is None
    single_threaded_blas()
    flows = FlowLibrary.load(settings.flow_path, settings.default_flow)
    # First: a model that cannot be served stops start-up before the slower loading below.
    llm = llm or build_llm(settings)
    encoder = encoder or Encoder(
        encoder_model(settings.encoder_adapter),
        cache_size=settings.embedding_cache_size,
        precision=settings.encoder_precision,
        threads=settings.encoder_threads,
        runtime=settings.encoder_runtime,
        cache_dir=Path(settings.encoder_cache_dir) if settings.encoder_cache_dir else None,
    )
    knowledge = KnowledgeBase(encoder, top_k=settings.retrieval_top_k)
    documents = load_documents(settings.kb_path)
    index = knowledge.load(documents)
    log.info(
        "knowledge base: %d documents, %d chunks from %s",
        len(documents),
        len(index.chunks),
        settings.kb_path,
    )
    intents = build_matcher(
        [load_intent_packs(settings.intents_path), flows.own_intents()],
        encoder,
        settings.intent_threshold,
        settings.intent_margin,
    )
    breaker = CircuitBreaker(settings.breaker_failures, settings.breaker_cooldown_s)
    knowledge_tier = KnowledgeTier(knowledge, llm, breaker, knowledge_config(settings))
    quick_tier = build_quick_tier(settings, encoder)
    cache_tier = build_cache_tier(settings, encoder, knowledge, flows)
    tiers: list[Tier] = [t for t in (quick_tier, cache_tier) if t is not None]
    responder = ResponderChain([*tiers, knowledge_tier], fallback_text=settings.fallback_text)
    return Service(
        settings,
        encoder,
        knowledge,
        llm,
        breaker,
        responder,
        flows,
        intents,
        cache=cache_tier,
        owns_encoder=owns_encoder,
        owns_llm=owns_llm,
    )
