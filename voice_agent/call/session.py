"""One call session per connection. It owns the call's tasks, history and place in its flow:
caller events go through the flow engine, whose decisions are spoken, answered by the
responder chain, or turned into actions; silence past the state's timeout brings a reminder.
Frontends feed it caller events and carry its agent events out."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from contextlib import aclosing
from dataclasses import dataclass, replace
from typing import Any

import state_machine as sm
from quick_responses.intents import IntentMatch, IntentMatcher
from voice_agent.call.policy import call_mode, serving_tiers, shadow_tiers, turn_budgets
from voice_agent.call.speculation import Prepared, Speculator
from voice_agent.events import (
    ActionEvent,
    AgentEvent,
    CallEnd,
    CallerEvent,
    CallerSilent,
    CallStart,
    Delta,
    Done,
    Dtmf,
    Ended,
    ErrorEvent,
    Interrupt,
    Listening,
    Ready,
    Transcript,
    Utterance,
)
from voice_agent.flags import FlagStore
from voice_agent.flows import FlowLibrary
from voice_agent.tasks import TaskScope
from voice_agent.telemetry.event import Telemetry, TurnEvent
from voice_agent.turn import TurnRecord, now
from voice_agent.types import (
    Action,
    Budgets,
    Message,
    Passage,
    Responder,
    Retriever,
    Source,
    TurnRequest,
    Vector,
    WouldBe,
)

log = logging.getLogger(__name__)

Send = Callable[[AgentEvent], Awaitable[None]]
Embed = Callable[[str], Awaitable[Vector]]

END_REASONS = {"hangup": "agent_hangup", "transfer": "transfer"}


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


@dataclass(frozen=True, slots=True)
class CallDeps:
    responder: Responder
    flows: FlowLibrary
    intents: IntentMatcher
    embed: Embed
    telemetry: Telemetry | None = None
    flags: FlagStore | None = None  # run-time flags; without, the config's mode and budgets
    retriever: Retriever | None = None  # for speculative retrieval on partials


def _action(action: sm.Action) -> Action:
    params: dict[str, Any] = {}
    if action.name == "transfer":
        params["to"] = action.value
    elif action.name == "dtmf":
        params["digits"] = action.value
    return Action(action.name, params)


class CallSession:
    def __init__(self, deps: CallDeps, send: Send, config: CallConfig) -> None:
        self._deps = deps
        self._send = send
        self._config = config
        self.call_id: str | None = None
        self.history: list[Message] = []
        self.ended = False
        self.flow: sm.Flow | None = None
        self.flow_state: sm.CallState | None = None
        self._context: dict[str, str] = dict(config.context)
        self._metadata: list[str] = []  # the call's own values from call.start: never cached
        self._tasks = TaskScope("call")
        self._speculator = Speculator(deps.embed, deps.retriever, self._tasks)
        self._turn: asyncio.Task[None] | None = None
        self._silence: asyncio.Task[None] | None = None
        self._turn_id = 0

    @property
    def turn_id(self) -> int:
        """The id of the newest turn (the one a caller event just started)."""
        return self._turn_id

    @property
    def started(self) -> bool:
        return self.call_id is not None

    @property
    def state(self) -> str:
        return self.flow_state.state if self.flow_state is not None else ""

    async def handle(self, event: CallerEvent, received_at: float | None = None) -> None:
        """Act on one caller event. Returns at once; turns run in their own task."""
        if self.ended:
            await self.error("call_ended", "the call has ended")
            return
        if isinstance(event, CallStart):
            await self._start(event)
            return
        if not self.started:
            await self.error("call_not_started", "send call.start before anything else")
            return
        self._quiet()  # the caller did something: no reminder now
        if isinstance(event, Utterance):
            if event.final:
                await self._cancel_turn()
                record = self._record(received_at)
                self._remember(Message("user", event.text.strip()))
                self._spawn(self._utterance_turn(event.text.strip(), record))
            elif self._config.speculate and self.mode == "enabled":
                self._speculator.partial(event.text)
        elif isinstance(event, Interrupt):
            await self._interrupt(event)
        elif isinstance(event, Dtmf):
            await self._dtmf(event, received_at)
        elif isinstance(event, Transcript):
            self._replace_history(event)
        elif isinstance(event, CallerSilent):
            await self._cancel_turn()
            await self._remind()
        elif isinstance(event, CallEnd):
            await self.end(event.reason)

    async def error(self, code: str, message: str) -> None:
        await self._send(ErrorEvent(code, message))

    # Starting

    async def _start(self, event: CallStart) -> None:
        if self.started:
            await self.error("call_already_started", f"call {self.call_id} is already running")
            return
        flow = self._deps.flows.get(event.flow)
        if flow is None:
            known = ", ".join(sorted(self._deps.flows.flows))
            await self.error("unknown_flow", f"no flow named {event.flow!r}; known: {known}")
            return
        self.call_id = event.call_id or uuid.uuid4().hex
        self._tasks = TaskScope(f"call-{self.call_id}")
        self._speculator = Speculator(self._deps.embed, self._deps.retriever, self._tasks)
        self.flow = flow
        # Placeholders: the service's values, then the flow's, then the call's metadata.
        self._context.update(flow.context)
        for key, value in event.metadata.items():
            if isinstance(value, str | int | float) and not isinstance(value, bool):
                self._context[str(key)] = str(value)
                self._metadata.append(str(value))
        self.flow_state, decision = sm.start(flow, self._context)
        await self._send(Ready(self.call_id, self.state, self.mode))
        if (decision.say or decision.actions) and not event.resume:
            self._spawn(self._deliver(self._record(None), decision, {"reason": "start"}))
        else:
            await self._listen(decision)

    # Caller events

    async def _utterance_turn(self, text: str, record: TurnRecord) -> None:
        assert self.flow is not None and self.flow_state is not None
        partials = self._speculator.partials
        prepared = await self._prepared(text, record)
        candidates = sm.candidate_intents(self.flow, self.flow_state)
        match, vector = await self._match(text, candidates, record, prepared)
        self.flow_state, decision = sm.step(
            self.flow,
            self.flow_state,
            sm.Utterance(text, match.intent if match else None),
            self._context,
        )
        detail: dict[str, Any] = {"reason": decision.reason}
        if match is not None:
            detail["intent"] = {"name": match.intent, "score": match.score, "kind": match.kind}
        if partials:
            detail["speculation"] = "used" if prepared is not None else "missed"
        passages = prepared.passages if prepared is not None else None
        await self._deliver(record, decision, detail, text=text, vector=vector, passages=passages)

    async def _prepared(self, text: str, record: TurnRecord) -> Prepared | None:
        """The work done on the caller's partials, when the final says the same words."""
        if not self._speculator.partials:
            return None
        started = now()
        prepared = await self._speculator.take(text)
        record.add_duration("speculation_wait", started)
        return prepared

    async def _match(
        self,
        text: str,
        candidates: dict[str, str],
        record: TurnRecord,
        prepared: Prepared | None,
    ) -> tuple[IntentMatch | None, Vector | None]:
        """The intent among `candidates`, and the utterance's vector if one was computed
        here or on the caller's partials (the tiers reuse it)."""
        intents = self._deps.intents
        vector = prepared.vector if prepared is not None else None
        match = intents.exact(text, candidates)
        if match is not None or not intents.needs_vector(text, candidates):
            return match, vector
        if vector is None:
            started = now()
            vector = await self._deps.embed(text)
            record.add_duration("embedding", started)
        return intents.nearest(vector, candidates), vector

    async def _dtmf(self, event: Dtmf, received_at: float | None) -> None:
        assert self.flow is not None and self.flow_state is not None
        self.flow_state, decision = sm.step(
            self.flow, self.flow_state, sm.Dtmf(event.digit), self._context
        )
        if decision.say or decision.actions or decision.respond:
            await self._cancel_turn()
            self._spawn(
                self._deliver(self._record(received_at), decision, {"reason": decision.reason})
            )
        else:
            await self._listen(decision)

    async def _interrupt(self, event: Interrupt) -> None:
        await self._cancel_turn()
        if event.heard is None:
            return  # keep what was sent: the frontend does not know what was heard
        for index in range(len(self.history) - 1, -1, -1):
            message = self.history[index]
            if message.role == "assistant":
                if event.heard.strip():
                    message.content = event.heard.strip()
                else:
                    del self.history[index]
                return
            if message.role == "user":
                return  # nothing of the agent's was said since the caller's last turn

    def _replace_history(self, event: Transcript) -> None:
        """The frontend's transcript becomes the history. An agent turn keeps the source it
        had here (a flow prompt stays out of the LLM's history) when it is what the session
        said, or the start of it (cut short by the caller)."""
        said = [m for m in self.history if m.role == "assistant"]
        history = []
        for role, text in event.turns:
            if not text.strip():
                continue
            if role != "assistant":
                history.append(Message("user", text))
                continue
            source = next((m.source for m in said if m.content.startswith(text.strip())), None)
            history.append(Message("assistant", text, source=source))
        self.history = history[-self._config.max_history_messages :]

    # Turns

    def _record(self, received_at: float | None) -> TurnRecord:
        self._turn_id += 1
        record = TurnRecord(self.call_id or "", self._turn_id)
        if received_at is not None:
            record.received_at = received_at
        return record

    def _spawn(self, work: Any) -> None:
        self._turn = self._tasks.spawn(self._guarded(work), name=f"turn-{self._turn_id}")
        # A turn cancelled before it ran (a hang-up right behind the utterance) never awaits
        # `work`: close it, or it is reported as a coroutine never awaited.
        self._turn.add_done_callback(lambda _: work.close())

    async def _guarded(self, work: Awaitable[None]) -> None:
        turn_id = self._turn_id
        try:
            await work
        except asyncio.CancelledError:
            raise
        except Exception:  # task boundary: a broken turn must not leave the caller in silence
            log.exception("turn %s of call %s failed", turn_id, self.call_id)
            await self._say_fallback(turn_id)

    async def _deliver(
        self,
        record: TurnRecord,
        decision: sm.Decision,
        detail: dict[str, Any],
        text: str | None = None,
        vector: Vector | None = None,
        passages: list[Passage] | None = None,
    ) -> None:
        """Speak what the flow decided, let the tiers answer if it asked them to, then send
        the actions; end the call or wait for the caller."""
        turn_id = record.turn_id
        said = Message("assistant", "", source="flow")
        self._remember(said)
        spoken: list[str] = []
        source: Source = "flow"
        out_detail: dict[str, Any] = {"flow": detail}
        context: list[str] = []
        would_be: WouldBe | None = None
        actions = [_action(a) for a in decision.actions]

        async def speak(piece: str, starts_part: bool = False) -> None:
            # The flow's words and the tiers' answer are two parts of one turn: a space goes
            # between them. Within a part, pieces carry their own spacing (a word may come in
            # several pieces).
            if starts_part and spoken and not piece.startswith(" "):
                piece = " " + piece
            await self._send(Delta(turn_id, piece))
            record.first_token_sent()
            spoken.append(piece)
            said.content = "".join(spoken).strip()

        if decision.say:
            await speak(decision.say)
        if decision.respond and text is not None:
            slots = dict(self.flow_state.slots) if self.flow_state is not None else {}
            request = TurnRequest(
                call_id=record.call_id,
                turn_id=turn_id,
                text=text,
                state=decision.state,
                history=tuple(self.history[:-2]),  # before this utterance and this answer
                record=record,
                task=decision.task,
                budgets=turn_budgets(decision, self._config.budgets, self._deps.flags),
                cacheable=decision.cacheable,
                tiers=serving_tiers(decision, self.mode, self._deps.flags),
                vector=vector,
                passages=passages,
                quick_intents=decision.quick_intents,
                context={**self._context, **slots},
                flow=self.flow.name if self.flow is not None else "",
                private=(*slots.values(), *self._metadata),
            )
            shadow_task = self._shadow(request, decision)
            reply = await self._deps.responder.respond(request)
            said.source = reply.source  # set now: a cut-off answer stays in the history
            first = True
            async with aclosing(reply.pieces):
                async for piece in reply.pieces:
                    if piece:
                        await speak(piece, starts_part=first)
                        first = False
            source = reply.source
            said.source = source
            out_detail.update(reply.detail)
            context = reply.context
            actions.extend(reply.actions)
            if shadow_task is not None:
                done, _ = await asyncio.wait({shadow_task}, timeout=self._config.cancel_wait_s)
                if done and not shadow_task.cancelled() and shadow_task.exception() is None:
                    would_be = shadow_task.result()
        latency = record.latency_ms()
        await self._send(Done(turn_id, said.content, source, decision.state, latency, out_detail))
        self._observe(
            record,
            decision.state,
            source,
            text,
            said.content,
            latency,
            out_detail,
            context,
            would_be,
        )
        for action in actions:
            await self._send(ActionEvent(turn_id, action.name, action.params))
        if decision.respond and self.flow is not None and self.flow_state is not None:
            self.flow_state, decision = sm.step(
                self.flow, self.flow_state, sm.Answered(), self._context
            )
            if decision.say or decision.actions:
                await self._deliver(self._record(None), decision, {"reason": decision.reason})
                return
        await self._after_turn(decision, actions)

    def _observe(
        self,
        record: TurnRecord,
        state: str,
        source: str,
        question: str | None,
        answer: str,
        latency: dict[str, float],
        detail: dict[str, Any],
        context: list[str],
        would_be: WouldBe | None,
    ) -> None:
        telemetry = self._deps.telemetry
        if telemetry is None:
            return
        flow = self.flow.name if self.flow is not None else ""
        telemetry.turn_served(
            TurnEvent(
                record.call_id,
                record.turn_id,
                flow,
                state,
                self.mode,
                source,
                question,
                answer,
                latency,
                detail,
                tuple(context),
                would_be,
            )
        )

    @property
    def mode(self) -> str:
        """This call's mode now: the flags are read on every turn."""
        return call_mode(self._deps.flags, self._config.mode, self.call_id or "")

    def _shadow(self, request: TurnRequest, decision: sm.Decision) -> asyncio.Task[Any] | None:
        """In shadow mode, ask the fast tiers what they would answer, beside the served path."""
        if self.mode != "shadow":
            return None
        fast = shadow_tiers(decision, self._deps.flags)
        if not fast:
            return None
        request.shadow = True  # the served path lets the cache learn
        probe = replace(request, tiers=fast, record=TurnRecord(request.call_id, request.turn_id))
        return self._tasks.spawn(self._deps.responder.would_be(probe), name="shadow")

    async def _after_turn(self, decision: sm.Decision, actions: list[Action]) -> None:
        ending = [END_REASONS[a.name] for a in actions if a.name in END_REASONS]
        if decision.ended or ending:
            reason = ending[0] if ending else ""
            self._turn = None  # this task is ending the call; do not cancel itself
            await self.end(reason or "flow_ended")
        else:
            await self._listen(decision)

    async def _say_fallback(self, turn_id: int) -> None:
        text = self._config.fallback_text
        await self._send(Delta(turn_id, text))
        self._remember(Message("assistant", text, source="fallback"))
        await self._send(
            Done(turn_id, text, "fallback", self.state, {}, {"reason": "internal_error"})
        )
        await self._send(Listening(turn_id))

    # Silence

    async def _listen(self, decision: sm.Decision) -> None:
        """The agent is done for now: say so, and time the caller's silence."""
        await self._send(Listening(self._turn_id))
        self._arm_silence(decision)

    def _arm_silence(self, decision: sm.Decision) -> None:
        self._quiet()
        if self._config.frontend_reminders:
            return
        if decision.silence_timeout_s is not None and not self.ended:
            self._silence = self._tasks.spawn(
                self._remind_after(decision.silence_timeout_s), name="silence"
            )

    def _quiet(self) -> None:
        if self._silence is not None and not self._silence.done():
            self._silence.cancel()
        self._silence = None

    async def _remind_after(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        if self._turn is not None and not self._turn.done():
            return  # the agent is still talking; the turn re-arms the timer when done
        self._silence = None
        await self._remind()

    async def _remind(self) -> None:
        """The caller has been silent: the flow decides the nudge (or gives up)."""
        assert self.flow is not None and self.flow_state is not None
        self.flow_state, decision = sm.step(self.flow, self.flow_state, sm.Silence(), self._context)
        self._spawn(self._deliver(self._record(None), decision, {"reason": decision.reason}))

    # Ending

    async def _cancel_turn(self) -> None:
        turn, self._turn = self._turn, None
        if turn is not None:
            await self._tasks.cancel(turn, self._config.cancel_wait_s)

    def _remember(self, message: Message) -> None:
        self.history.append(message)
        overflow = len(self.history) - self._config.max_history_messages
        if overflow > 0:
            del self.history[:overflow]

    async def end(self, reason: str) -> None:
        """End the call: stop its work, then tell the frontend."""
        if self.ended:
            return
        self.ended = True
        self._quiet()
        await self._cancel_turn()
        await self._send(Ended(reason))

    async def close(self) -> None:
        """The connection is gone: cancel everything, waiting a bounded time."""
        self.ended = True
        await self._tasks.cancel_all(self._config.cancel_wait_s)
