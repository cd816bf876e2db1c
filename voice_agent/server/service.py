"""The running service's parts, shared by every call: the encoder, the knowledge base, the LLM
client, the circuit breaker, the responder chain, the flags and the telemetry observers. Built
once at start-up by `voice_agent.server.build.build_service`."""

from __future__ import annotations

import inspect
import logging
from dataclasses import dataclass
from typing import Any

from quick_responses.intents import IntentMatcher
from voice_agent.cache.store import CacheScope
from voice_agent.cache.warming import (
    answering_scopes,
)
from voice_agent.call.session import CallConfig, CallDeps
from voice_agent.flags import FlagStore
from voice_agent.fleet.flags import FleetFlags
from voice_agent.flows import FlowLibrary
from voice_agent.llm.circuit_breaker import CircuitBreaker
from voice_agent.llm.local import LocalModel
from voice_agent.rag.encoder import (
    Encoder,
)
from voice_agent.rag.knowledge_base import KnowledgeBase
from voice_agent.server.observers import Observers
from voice_agent.server.speech import SpeechWarmer
from voice_agent.settings import Settings
from voice_agent.speech.kit import SpeechKit
from voice_agent.telemetry.event import Telemetry
from voice_agent.telemetry.latency import LatencyTracker
from voice_agent.telemetry.latency_slo import LatencySLO
from voice_agent.telemetry.metrics import PrometheusMetrics
from voice_agent.telemetry.quality import QualityTracker
from voice_agent.telemetry.shadow import ShadowRecorder
from voice_agent.telemetry.stream import TelemetryStream
from voice_agent.tiers.cache import CacheTier
from voice_agent.tiers.chain import ResponderChain
from voice_agent.types import Budgets, LLMClient

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Service:
    """Every part, built once by `build_service`; frozen, so a part is swapped only by making
    another container (`dataclasses.replace`), never under a running call."""

    settings: Settings
    encoder: Encoder
    knowledge: KnowledgeBase
    llm: LLMClient
    breaker: CircuitBreaker
    responder: ResponderChain
    flows: FlowLibrary
    intents: IntentMatcher
    cache: CacheTier | None
    flags: FlagStore
    observers: Observers  # telemetry: trackers, exporters, the live stream
    fleet_flags: FleetFlags | None = None  # with Redis: the flags are the fleet's
    speech: SpeechKit | None = None  # audio calls' engines; None: speech is off
    speech_warmer: SpeechWarmer | None = None
    # Models handed in to build_service (tests, benches) belong to whoever handed them in.
    owns_encoder: bool = True
    owns_llm: bool = True
    owns_speech: bool = True

    # The observers most routes and tests reach for, by name.
    @property
    def quality(self) -> QualityTracker:
        return self.observers.quality

    @property
    def shadow(self) -> ShadowRecorder:
        return self.observers.shadow

    @property
    def latency(self) -> LatencyTracker:
        return self.observers.latency

    @property
    def prometheus(self) -> PrometheusMetrics:
        return self.observers.prometheus

    @property
    def stream(self) -> TelemetryStream:
        return self.observers.stream

    @property
    def telemetry(self) -> Telemetry:
        return self.observers.telemetry

    @property
    def latency_slo(self) -> LatencySLO:
        return self.observers.slo

    @property
    def call_config(self) -> CallConfig:
        return CallConfig(
            mode=self.settings.mode.value,
            fallback_text=self.settings.fallback_text,
            budgets=default_budgets(self.settings),
            context={"business": self.settings.business_name},
            cancel_wait_s=self.settings.cancel_wait_s,
            speculate=self.settings.speculate_partials,
            max_turns_per_minute=self.settings.max_turns_per_minute,
            max_duration_s=self.settings.max_call_duration_s,
            time_limit_text=self.settings.time_limit_goodbye,
            embed_timeout_s=self.settings.embed_timeout_s,
        )

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

    async def start(self) -> None:
        """Start background work that needs the event loop (the shared cache's tasks, the
        local model's supervisor); join the fleet's flags first."""
        if self.fleet_flags is not None:
            await self.fleet_flags.start()
        if self.cache is not None and self.cache.shared is not None:
            await self.cache.shared.start()
        if isinstance(self.llm, LocalModel):
            self.llm.supervise()
        if self.speech_warmer is not None:
            self.speech_warmer.start()

    def llm_status(self) -> dict[str, object] | None:
        """The local model's process (state, pid, restarts, last exit); None for a hosted one."""
        return self.llm.status() if isinstance(self.llm, LocalModel) else None

    def cache_scopes(self) -> list[CacheScope]:
        """The answering states of every flow, under the current knowledge base."""
        return answering_scopes(
            self.flows.flows.values(), self.knowledge.fingerprint, self.settings.language
        )

    async def aclose(self) -> None:
        if self.speech_warmer is not None:
            await self.speech_warmer.aclose()
        if self.speech is not None and self.owns_speech:
            self.speech.close()
        if self.fleet_flags is not None:
            await self.fleet_flags.aclose()
        await self.observers.aclose()
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


def default_budgets(settings: Settings) -> Budgets:
    """The service's budgets for an LLM answer, under each state's own."""
    return Budgets(
        first_token_s=settings.first_token_budget_s,
        stall_s=settings.llm_stall_timeout_s,
        total_s=settings.llm_timeout_s,
    )
