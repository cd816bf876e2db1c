"""What a call session is given: its configuration, its dependencies, and the started call's own
state (flow, place in it, placeholders, history)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

import state_machine as sm
from quick_responses.intents import IntentMatcher
from voice_agent.flags import FlagStore
from voice_agent.flows import FlowLibrary
from voice_agent.telemetry.event import Telemetry
from voice_agent.types import Budgets, Message, Responder, Retriever
from voice_agent.utterance import Embed

__all__ = ["CallConfig", "CallDeps", "Embed", "LiveCall", "Sleep"]

Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class CallConfig:
    mode: str
    fallback_text: str
    budgets: Budgets  # the service's defaults, under each state's own
    context: Mapping[str, str]  # placeholder values such as {business}
    cancel_wait_s: float = 0.5
    max_history_messages: int = 40
    # The frontend times the caller's silence and sends CallerSilent (Retell): no own timer.
    frontend_reminders: bool = False
    speculate: bool = True  # work on partial transcripts ahead of the final (enabled mode)
    max_turns_per_minute: int = 0  # caller turns past it are refused (0: no limit)
    max_duration_s: float = 0  # past it the call hears `time_limit_text` and ends (0: none)
    time_limit_text: str = "We've reached the time limit for this call. Goodbye."
    embed_timeout_s: float | None = None  # a turn's wait for its embedding (None: no bound)


@dataclass(frozen=True, slots=True)
class CallDeps:
    responder: Responder
    flows: FlowLibrary
    intents: IntentMatcher
    embed: Embed
    telemetry: Telemetry | None = None
    flags: FlagStore | None = None  # run-time flags; without, the config's mode and budgets
    retriever: Retriever | None = None  # for speculative retrieval on partials
    sleep: Sleep = asyncio.sleep  # what the silence timer waits with (a virtual clock in tests)


@dataclass(slots=True)
class LiveCall:
    """A started call: its flow is known from call.start on."""

    call_id: str
    flow: sm.Flow
    state: sm.CallState
    context: dict[str, str]  # placeholders: the service's, the flow's, then the call's own
    metadata: tuple[str, ...] = ()  # the call's own values from call.start: never cached
    history: list[Message] = field(default_factory=list)
