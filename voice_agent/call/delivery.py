"""One turn's words on their way to the caller: the flow's, then the tiers' answer streamed
piece by piece, with the shadow probe beside it. The session decides what a turn is; this
module only delivers it and reports what was said."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass, field, replace
from typing import Any

import state_machine as sm
from voice_agent.call.config import LiveCall
from voice_agent.call.plan import TurnPlan
from voice_agent.events import AgentEvent, Delta, Done
from voice_agent.tasks import TaskScope
from voice_agent.telemetry.event import Telemetry, TurnEvent
from voice_agent.turn import TurnRecord
from voice_agent.types import (
    Action,
    HangUp,
    Message,
    Outcome,
    Responder,
    SendDigits,
    Source,
    Transfer,
    TurnRequest,
    WouldBe,
)
from voice_agent.utterance import Utterance

Send = Callable[[AgentEvent], Awaitable[None]]


def ends_call(action: Action) -> str | None:
    """The reason the call ends with this action, or None when it goes on."""
    if isinstance(action, HangUp):
        return "agent_hangup"
    if isinstance(action, Transfer):
        return "transfer"
    return None


@dataclass(slots=True)
class Answered:
    """What the tiers' answer turned out to be, once its stream ended."""

    outcome: Outcome
    detail: dict[str, Any]
    context: list[str]
    actions: list[Action]
    would_be: WouldBe | None = None


@dataclass(slots=True)
class Speaker:
    """Sends a turn's pieces as deltas and keeps what was said in the history's message, so
    that a turn cut short leaves only what went out."""

    send: Send
    record: TurnRecord
    said: Message
    spoken: list[str] = field(default_factory=list)

    async def speak(self, piece: str, starts_part: bool = False) -> None:
        # The flow's words and the tiers' answer are two parts of one turn: a space goes
        # between them. Within a part, pieces carry their own spacing (a word may come in
        # several pieces).
        if starts_part and self.spoken and not piece.startswith(" "):
            piece = " " + piece
        await self.send(Delta(self.record.turn_id, piece))
        self.record.first_token_sent()
        self.spoken.append(piece)
        self.said.content = "".join(self.spoken).strip()


async def answer(
    responder: Responder,
    request: TurnRequest,
    plan: TurnPlan,
    speaker: Speaker,
    tasks: TaskScope,
    shadow_wait_s: float,
) -> Answered:
    """Let the tiers answer `request` through `speaker`; in shadow mode, ask the fast tiers
    what they would have said, beside it."""
    probe = None
    if plan.shadow_tiers:
        ask = replace(
            request,
            tiers=plan.shadow_tiers,
            record=TurnRecord(request.call_id, request.turn_id),
        )
        probe = tasks.spawn(responder.would_be(ask), name="shadow")
    reply = await responder.respond(request)
    speaker.said.source = reply.source  # set now: a cut-off answer stays in the history
    first = True
    async with aclosing(reply.pieces):
        async for piece in reply.pieces:
            if piece:
                await speaker.speak(piece, starts_part=first)
                first = False
    speaker.said.source = reply.source
    would_be = await _would_be(probe, shadow_wait_s) if probe is not None else None
    outcome = reply.outcome()
    return Answered(outcome, dict(reply.detail), reply.context, list(reply.actions), would_be)


async def _would_be(probe: asyncio.Task[WouldBe | None], wait_s: float) -> WouldBe | None:
    done, _ = await asyncio.wait({probe}, timeout=wait_s)
    if done and not probe.cancelled() and probe.exception() is None:
        return probe.result()
    return None


def turn_request(
    live: LiveCall,
    record: TurnRecord,
    decision: sm.Decision,
    plan: TurnPlan,
    utterance: Utterance,
) -> TurnRequest:
    """What the tiers are asked: the utterance, the plan's budgets and tiers, the call's context."""
    slots = dict(live.state.slots)
    return TurnRequest(
        call_id=record.call_id,
        turn_id=record.turn_id,
        utterance=utterance,
        state=decision.state,
        history=tuple(live.history[:-2]),  # before this utterance and this answer
        record=record,
        task=decision.task,
        budgets=plan.budgets,
        cacheable=decision.cacheable,
        tiers=plan.tiers,
        quick_intents=decision.quick_intents,
        context={**live.context, **slots},
        flow=live.flow.name,
        private=(*slots.values(), *live.metadata),
        shadow=bool(plan.shadow_tiers),  # the served path lets the cache learn
    )


def flow_action(action: sm.Action) -> Action:
    if action.name == "transfer":
        return Transfer(action.value)
    if action.name == "dtmf":
        return SendDigits(action.value or "")
    return HangUp()


def turn_event(
    call_id: str,
    flow: str,
    mode: str,
    done: Done,
    utterance: Utterance | None,
    answered: Answered | None,
    spans_ms: dict[str, tuple[float, float]] | None = None,
) -> TurnEvent:
    """What the observers are told of a finished turn: what the frontend was told, and more."""
    outcome = answered.outcome if answered is not None else None
    return TurnEvent(
        call_id=call_id,
        turn_id=done.turn_id,
        flow=flow,
        state=done.state,
        mode=mode,
        source=done.source,
        question=utterance.text if utterance is not None else None,
        answer=done.text,
        latency_ms=done.latency_ms,
        detail=done.detail,
        context=tuple(answered.context) if answered is not None else (),
        would_be=answered.would_be if answered is not None else None,
        cache=outcome.cache if outcome is not None else None,
        intent_score=outcome.intent_score if outcome is not None else None,
        fallback_reason=outcome.fallback_reason if outcome is not None else None,
        spans_ms=spans_ms if spans_ms is not None else {},
    )


async def say_line(
    send: Send,
    turn_id: int,
    said: Message,
    state: str,
    remember: Callable[[Message], None],
    reason: str,
) -> None:
    """A turn of one fixed line (the fallback after a broken turn, the goodbye when the service
    goes away): the caller hears it, the history keeps it, the turn is done."""
    await send(Delta(turn_id, said.content))
    remember(said)
    source: Source = "fallback" if said.source == "fallback" else "flow"
    await send(Done(turn_id, said.content, source, state, {}, {"reason": reason}))


async def report(
    send: Send,
    telemetry: Telemetry | None,
    live: LiveCall,
    plan: TurnPlan,
    record: TurnRecord,
    state: str,
    said: str,
    flow_detail: dict[str, Any],
    utterance: Utterance | None,
    answered: Answered | None,
) -> None:
    """Tell the frontend the turn is done, and the observers what it was."""
    source = answered.outcome.source if answered is not None else "flow"
    detail: dict[str, Any] = {"flow": flow_detail}
    if answered is not None:
        detail.update(answered.detail)
    done = Done(record.turn_id, said, source, state, record.latency_ms(), detail)
    await send(done)
    if telemetry is not None:
        event = turn_event(
            live.call_id, live.flow.name, plan.mode, done, utterance, answered, record.spans_ms
        )
        telemetry.turn_served(event)
