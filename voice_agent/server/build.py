"""Start-up: every part of the service built once from the settings, in the order that fails
fastest (a model that cannot be served stops start-up before the slow loading)."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

from quick_responses.head import IntentHead, head_path
from quick_responses.pack import PackError, load_pack
from quick_responses.responder import QuickResponder
from voice_agent.cache.policy import CachePolicy
from voice_agent.cache.shared import SharedCache, SharedCacheConfig
from voice_agent.cache.store import ResponseCache
from voice_agent.cache.warming import (
    WarmAnswer,
    faq_pairs,
    read_warm_file,
)
from voice_agent.errors import ConfigError
from voice_agent.flags import Flags, FlagStore
from voice_agent.fleet.flags import FleetFlags
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
from voice_agent.server.observers import build_observers
from voice_agent.server.service import Service, default_budgets
from voice_agent.server.speech import SpeechWarmer, build_speech, fast_lines
from voice_agent.settings import LLMBackend, Settings
from voice_agent.speech.kit import SpeechKit
from voice_agent.tiers.cache import CacheTier
from voice_agent.tiers.chain import ResponderChain
from voice_agent.tiers.knowledge import KnowledgeConfig, KnowledgeTier
from voice_agent.tiers.quick import QuickTier
from voice_agent.types import LLMClient, Tier

log = logging.getLogger(__name__)

DEFAULT_OPENAI_MODEL = "gpt-4o-mini"


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
    if settings.llm_backend is LLMBackend.EXTRACTIVE:
        from voice_agent.llm.extractive import ExtractiveLLM

        return ExtractiveLLM()
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
        budgets=default_budgets(settings),
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
    return QuickTier(responder, {"business": settings.business_name})


def build_cache_tier(
    settings: Settings, encoder: Encoder, knowledge: KnowledgeBase
) -> CacheTier | None:
    """The response cache and its shared layer when Redis is configured (warm_at_start fills
    it once the service exists)."""
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
    return CacheTier(
        cache,
        encoder.embed,
        lambda: knowledge.fingerprint,
        shared,
        settings.language,
        min_quality=settings.cache_min_quality,
        embed_later=encoder.embed_later,
    )


def warm_at_start(service: Service) -> None:
    """Before the port opens: the knowledge base's FAQ pairs and the warm file's answers stored
    in every answering state (the same scopes as warming at run time: Service.cache_scopes)."""
    settings, cache = service.settings, service.cache
    if cache is None:
        return
    answers: list[WarmAnswer] = []
    if settings.cache_warm_faq:
        answers += faq_pairs(service.knowledge.documents)
    if settings.cache_warm_file is not None:
        answers += read_warm_file(settings.cache_warm_file)
    if not answers:
        return
    scopes = service.cache_scopes()
    encode = service.encoder.encode_sync
    questions = list(encode([a.question for a in answers]))
    stored = cache.warm(answers, scopes, questions, list(encode([a.answer for a in answers])))
    log.info("response cache: warmed %d answers into %d states", stored, len(scopes))


def build_encoder(settings: Settings) -> Encoder:
    return Encoder(
        encoder_model(settings.encoder_adapter),
        cache_size=settings.embedding_cache_size,
        precision=settings.encoder_precision,
        threads=settings.encoder_threads,
        runtime=settings.encoder_runtime,
        cache_dir=Path(settings.encoder_cache_dir) if settings.encoder_cache_dir else None,
    )


def build_knowledge(settings: Settings, encoder: Encoder) -> KnowledgeBase:
    """The knowledge base read, chunked, embedded and indexed."""
    knowledge = KnowledgeBase(encoder, top_k=settings.retrieval_top_k)
    documents = load_documents(settings.kb_path)
    index = knowledge.load(documents)
    log.info(
        "knowledge base: %d documents, %d chunks from %s",
        len(documents),
        len(index.chunks),
        settings.kb_path,
    )
    return knowledge


def build_service(
    settings: Settings,
    *,
    encoder: Encoder | None = None,
    llm: LLMClient | None = None,
    speech: SpeechKit | None = None,
) -> Service:
    """Load models, build indexes, warm up. Slow by design: the per-turn path only looks up.
    An `encoder`, `llm` and `speech` handed in are shared with the caller, who closes them."""
    owns_encoder, owns_llm, owns_speech = encoder is None, llm is None, speech is None
    single_threaded_blas()
    flows = FlowLibrary.load(settings.flow_path, settings.default_flow)
    # First: a model that cannot be served stops start-up before the slower loading below.
    llm = llm or build_llm(settings)
    encoder = encoder or build_encoder(settings)
    knowledge = build_knowledge(settings, encoder)
    intents = build_matcher(
        [load_intent_packs(settings.intents_path), flows.own_intents()],
        encoder,
        settings.intent_threshold,
        settings.intent_margin,
    )
    breaker = CircuitBreaker(settings.breaker_failures, settings.breaker_cooldown_s)
    knowledge_tier = KnowledgeTier(knowledge, llm, breaker, knowledge_config(settings))
    quick_tier = build_quick_tier(settings, encoder)
    cache_tier = build_cache_tier(settings, encoder, knowledge)
    tiers: list[Tier] = [t for t in (quick_tier, cache_tier) if t is not None]
    responder = ResponderChain([*tiers, knowledge_tier], fallback_text=settings.fallback_text)
    flags = FlagStore(initial_flags(settings), settings.audit_log)
    fleet = None
    if settings.redis_url:  # the flags are the fleet's, in Redis
        fleet = FleetFlags(flags, settings.redis_url, timeout_s=settings.redis_timeout_s)
    if cache_tier is not None:
        follow_cache_threshold(flags, cache_tier)
    observers = build_observers(settings, encoder, flags, fleet)
    service = Service(
        settings=settings,
        encoder=encoder,
        knowledge=knowledge,
        llm=llm,
        breaker=breaker,
        responder=responder,
        flows=flows,
        intents=intents,
        cache=cache_tier,
        flags=flags,
        observers=observers,
        fleet_flags=fleet,
        owns_encoder=owns_encoder,
        owns_llm=owns_llm,
        owns_speech=owns_speech,
    )
    speech = speech or build_speech(settings)
    if speech is not None:
        lines = fast_lines(settings, flows, quick_tier, cache_tier)
        warmer = SpeechWarmer(speech, lines, cache_tier)
        service = replace(service, speech=speech, speech_warmer=warmer)
    warm_at_start(service)
    return service


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


def follow_cache_threshold(flags: FlagStore, cache: CacheTier) -> None:
    """The semantic threshold is a run-time flag: the cache's policy follows its changes."""
    store = cache.cache

    def follow(new: Flags) -> None:
        store.policy = replace(store.policy, threshold=new.cache_threshold)

    flags.on_change(follow)
