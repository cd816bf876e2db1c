"""The contracts between the service's layers: what a tier, a retriever and an LLM client are."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np
import numpy.typing as npt

from voice_agent.turn import TurnRecord

if TYPE_CHECKING:  # utterance.py imports this module's Vector and Passage
    from voice_agent.utterance import Utterance

Source = Literal["quick", "cache", "llm", "fallback", "flow"]
Vector = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class Budgets:
    """Time limits for one LLM answer, in seconds."""

    first_token_s: float  # no token by then: speak the filler, keep waiting
    stall_s: float  # longest gap between two tokens
    total_s: float  # the whole answer


Role = Literal["system", "user", "assistant"]


@dataclass(slots=True)
class Message:
    role: Role
    content: str
    source: str | None = None  # for the agent's turns: which tier or the flow said it

    def as_dict(self) -> dict[str, str]:
        return {"role": self.role, "content": self.content}


@dataclass(slots=True)
class Passage:
    """One retrieved chunk of a knowledge-base document."""

    doc_id: str
    title: str
    text: str
    score: float = 0.0


@dataclass(frozen=True, slots=True)
class Transfer:
    """Hand the call to a person or another number (None: the frontend's own default)."""

    to: str | None = None


@dataclass(frozen=True, slots=True)
class SendDigits:
    """Press keys on the line (an automated menu on the other side)."""

    digits: str


@dataclass(frozen=True, slots=True)
class HangUp:
    """End the call from the agent's side."""


# Something the frontend must do besides speaking; each codec says it in its own frames.
Action = Transfer | SendDigits | HangUp


@dataclass(frozen=True, slots=True)
class TurnRequest:
    """What the tiers are asked for one turn. Frozen: a tier learns from it and answers with a
    Pass or a Reply; it never writes back. The utterance computes its embedding once for all."""

    call_id: str
    turn_id: int
    utterance: Utterance
    state: str
    history: Sequence[Message]
    record: TurnRecord
    task: str | None = None
    budgets: Budgets | None = None  # None: the tier's defaults
    cacheable: bool = True
    tiers: Sequence[str] | None = None  # names of the tiers allowed to answer; None: all
    quick_intents: Sequence[str] | None = None  # small talk the state lets templates answer
    context: Mapping[str, str] = field(default_factory=dict)  # placeholder values of the call
    flow: str = ""
    private: Sequence[str] = ()  # the caller's own data (slot values, call metadata)
    shadow: bool = False  # shadow mode: the fast tiers only watch and learn

    @property
    def text(self) -> str:
        return self.utterance.text


@dataclass(frozen=True, slots=True)
class Pass:
    """A tier leaves the turn to the next one: why, and what it looked at (None: it did not
    look, e.g. a state it may not answer in). The evidence is for people reading the turn."""

    tier: str
    reason: str
    evidence: Mapping[str, Any] | None = None


CacheVerdict = Literal["hit", "miss"]


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a finished reply turned out to be: the facts that telemetry and quality read. The
    reply's `detail` is for people reading a turn (debug output), never for code."""

    source: Source
    cache: CacheVerdict | None = None  # the cache tier's verdict, when it looked
    intent_score: float | None = None  # a template's: how sure the quick tier was of the intent
    fallback_reason: str | None = None  # why the fallback line was spoken ("timeout_stall", ...)


@dataclass(slots=True)
class Reply:
    """A tier's answer. `pieces` streams speakable text; `source`, the outcome fields and
    `detail` may still change while it streams (a fallback replaces an answer that timed out)
    and are final once it ends, when `outcome()` reads them."""

    source: Source
    pieces: AsyncGenerator[str, None]
    detail: dict[str, Any] = field(default_factory=dict)
    actions: list[Action] = field(default_factory=list)
    answer: str | None = None  # the answer proper, set once it was generated in full
    context: list[str] = field(default_factory=list)  # the retrieved text the answer is made from
    cache: CacheVerdict | None = None
    intent_score: float | None = None
    fallback_reason: str | None = None

    def outcome(self) -> Outcome:
        return Outcome(self.source, self.cache, self.intent_score, self.fallback_reason)


class Tier(Protocol):
    name: str

    async def respond(self, request: TurnRequest) -> Reply | Pass:
        """Answer the turn, or pass it on to the next tier."""
        ...


@dataclass(frozen=True, slots=True)
class WouldBe:
    """A fast tier's answer in shadow mode: logged beside the served one, never spoken."""

    source: str
    answer: str
    latency_ms: float
    detail: Mapping[str, Any] = field(default_factory=dict)  # the tier's, for debug output
    intent_score: float | None = None  # a template's, as in Outcome


class Responder(Protocol):
    """What a call session talks to: always answers (the responder chain)."""

    async def respond(self, request: TurnRequest) -> Reply: ...

    async def would_be(self, request: TurnRequest) -> WouldBe | None:
        """What the fast tiers named in `request.tiers` would answer (shadow mode)."""
        ...


class Retriever(Protocol):
    """Passages for `query`; with `vector`, the query's embedding is not computed again, and
    with `lexical_only`, none is used (the encoder is too slow for this turn)."""

    async def retrieve(
        self,
        query: str,
        record: TurnRecord | None = None,
        vector: Vector | None = None,
        lexical_only: bool = False,
    ) -> list[Passage]: ...


class LLMClient(Protocol):
    name: str

    def stream(self, messages: Sequence[Message], max_tokens: int) -> AsyncGenerator[str, None]:
        """Yield text pieces as the model produces them. Closing the iterator stops the work."""
        ...
