"""One call session per connection. It owns the call's tasks, history and place in its flow:
caller events go through the flow engine, whose decisions are spoken, answered by the
responder chain, or turned into actions; silence past the state's timeout brings a reminder.
Frontends feed it caller events and carry its agent events out."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Coroutine
from typing import Any

import state_machine as sm
from voice_agent.call import history as call_history
from voice_agent.call.config import CallConfig, CallDeps, LiveCall
from voice_agent.call.delivery import (
    Send,
    Speaker,
    answer,
    ends_call,
    flow_action,
    report,
    say_line,
    turn_request,
)
from voice_agent.call.intent import match_intent
from voice_agent.call.limits import TurnRate
from voice_agent.call.plan import TurnDefaults, call_mode, plan_turn
from voice_agent.call.silence import SilenceTimer
from voice_agent.call.speculation import Speculator, utterance_for
from voice_agent.events import (
    ActionEvent,
    AudioIn,
    CallEnd,
    CallerEvent,
    CallerSilent,
    CallStart,
    Dtmf,
    Ended,
    ErrorEvent,
    Interrupt,
    Listening,
    Played,
    Ready,
    Transcript,
    Utterance,
)
from voice_agent.flags import Flags
from voice_agent.tasks import TaskScope
from voice_agent.turn import TurnRecord, now
from voice_agent.types import Action, Message
from voice_agent.utterance import Utterance as Heard  # not events.Utterance, the caller's

__all__ = ["CallConfig", "CallDeps", "CallSession"]

log = logging.getLogger(__name__)


class CallSession:
    def __init__(self, deps: CallDeps, send: Send, config: CallConfig) -> None:
        self._deps = deps
        self._send = send
        self._config = config
        self._defaults = TurnDefaults(config.mode, config.budgets)
        self.ended = False
        self._live: LiveCall | None = None
        self._tasks = TaskScope("call")
        self._speculator = Speculator(deps.embed, deps.retriever, self._tasks)
        self._turn: asyncio.Task[None] | None = None
        self._silence = SilenceTimer(self._silent, self._talking, deps.sleep)
        self._turn_id = 0
        self._rate = TurnRate(config.max_turns_per_minute)

    @property
    def call_id(self) -> str | None:
        return self._live.call_id if self._live is not None else None

    @property
    def turn_id(self) -> int:
        """The id of the newest turn (the one a caller event just started)."""
        return self._turn_id

    @property
    def started(self) -> bool:
        return self._live is not None

    @property
    def history(self) -> list[Message]:
        return self._live.history if self._live is not None else []

    @property
    def state(self) -> str:
        return self._live.state.state if self._live is not None else ""

    @property
    def mode(self) -> str:
        """This call's mode now; a turn reads the flags once, into its plan."""
        return call_mode(self._flags(), self._defaults, self.call_id or "")

    def _talking(self) -> bool:
        return self._turn is not None and not self._turn.done()

    def _flags(self) -> Flags | None:
        return self._deps.flags.current if self._deps.flags is not None else None

    async def handle(self, event: CallerEvent, received_at: float | None = None) -> None:
        """Act on one caller event. Returns at once; turns run in their own task."""
        if self.ended:
            await self.error("call_ended", "the call has ended")
            return
        if isinstance(event, CallStart):
            await self._start(event)
            return
        live = self._live
        if live is None:
            await self.error("call_not_started", "send call.start before anything else")
            return
        self._silence.stop()  # the caller did something: no reminder now
        if isinstance(event, Utterance):
            if event.final:
                if not self._rate.allow():
                    limit = self._config.max_turns_per_minute
                    await self.error("too_many_turns", f"over {limit} turns a minute: not answered")
                    return
                await self._cancel_turn()
                record = self._record(received_at)
                self._remember(Message("user", event.text.strip()))
                self._spawn(self._utterance_turn(live, event.text.strip(), record))
            elif self._config.speculate and self.mode == "enabled":
                self._speculator.partial(event.text)
        elif isinstance(event, Interrupt):
            await self._cancel_turn()
            if event.heard is not None:  # None: the frontend does not know what was heard
                call_history.keep_heard(live.history, event.heard)
        elif isinstance(event, Dtmf):
            await self._dtmf(live, event, received_at)
        elif isinstance(event, Transcript):
            limit = self._config.max_history_messages
            live.history = call_history.from_transcript(live.history, event.turns, limit)
        elif isinstance(event, CallerSilent):
            await self._cancel_turn()
            await self._remind(live)
        elif isinstance(event, CallEnd):
            await self.end(event.reason)
        elif isinstance(event, AudioIn | Played):
            await self.error("audio_not_supported", "this call takes words, not audio")

    async def error(self, code: str, message: str) -> None:
        await self._send(ErrorEvent(code, message))

    # Starting

    async def _start(self, event: CallStart) -> None:
        if self._live is not None:
            await self.error("call_already_started", f"call {self.call_id} is already running")
            return
        flow = self._deps.flows.get(event.flow)
        if flow is None:
            known = ", ".join(sorted(self._deps.flows.flows))
            await self.error("unknown_flow", f"no flow named {event.flow!r}; known: {known}")
            return
        call_id = event.call_id or uuid.uuid4().hex
        self._tasks = TaskScope(f"call-{call_id}")
        self._speculator = Speculator(self._deps.embed, self._deps.retriever, self._tasks)
        context = {**self._config.context, **flow.context}
        metadata = []
        for key, value in event.metadata.items():
            if isinstance(value, str | int | float) and not isinstance(value, bool):
                context[str(key)] = str(value)
                metadata.append(str(value))
        state, decision = sm.start(flow, context)
        live = self._live = LiveCall(call_id, flow, state, context, tuple(metadata))
        if self._config.max_duration_s > 0:
            self._tasks.spawn(self._time_limit(self._config.max_duration_s), name="time-limit")
        await self._send(Ready(call_id, self.state, self.mode))
        if (decision.say or decision.actions) and not event.resume:
            self._spawn(self._deliver(live, self._record(None), decision, {"reason": "start"}))
        else:
            await self._listen(decision)

    # Caller events

    async def _utterance_turn(self, live: LiveCall, text: str, record: TurnRecord) -> None:
        partials = self._speculator.partials
        prepared = await self._speculator.take_for(text, record)
        utterance = utterance_for(
            text, self._deps.embed, record, prepared, self._config.embed_timeout_s
        )
        started = now()  # the flow's decision: the intent (embedding included) and the step
        candidates = sm.candidate_intents(live.flow, live.state)
        match = await match_intent(self._deps.intents, utterance, candidates)
        intent = match.intent if match else None
        live.state, decision = sm.step(
            live.flow, live.state, sm.Utterance(text, intent), live.context
        )
        record.add_duration("flow_step", started)
        detail: dict[str, Any] = {"reason": decision.reason}
        if match is not None:
            detail["intent"] = {"name": match.intent, "score": match.score, "kind": match.kind}
        if partials:
            detail["speculation"] = "used" if prepared is not None else "missed"
        await self._deliver(live, record, decision, detail, utterance)

    async def _dtmf(self, live: LiveCall, event: Dtmf, received_at: float | None) -> None:
        live.state, decision = sm.step(live.flow, live.state, sm.Dtmf(event.digit), live.context)
        if decision.say or decision.actions or decision.respond:
            await self._cancel_turn()
            record = self._record(received_at)
            self._spawn(self._deliver(live, record, decision, {"reason": decision.reason}))
        else:
            await self._listen(decision)

    # Turns

    def _record(self, received_at: float | None) -> TurnRecord:
        self._turn_id += 1
        record = TurnRecord(self.call_id or "", self._turn_id)
        if received_at is not None:
            record.received_at = received_at
        return record

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
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
        live: LiveCall,
        record: TurnRecord,
        decision: sm.Decision,
        detail: dict[str, Any],
        utterance: Heard | None = None,
    ) -> None:
        """Speak what the flow decided, let the tiers answer if it asked them to, then send
        the actions; end the call or wait for the caller."""
        plan = plan_turn(decision, self._flags(), self._defaults, live.call_id)
        speaker = Speaker(self._send, record, Message("assistant", "", source="flow"))
        self._remember(speaker.said)
        if decision.say:
            await speaker.speak(decision.say)
        answered = None
        if decision.respond and utterance is not None:
            request = turn_request(live, record, decision, plan, utterance)
            answered = await answer(
                self._deps.responder,
                request,
                plan,
                speaker,
                self._tasks,
                self._config.cancel_wait_s,
            )
        actions = [flow_action(a) for a in decision.actions]
        said = speaker.said.content
        await report(self._send, self._deps.telemetry, live, plan, record, decision.state,
                     said, detail, utterance, answered)  # fmt: skip
        if answered is not None:
            actions.extend(answered.actions)
        for action in actions:
            await self._send(ActionEvent(record.turn_id, action))
        if decision.respond:
            live.state, decision = sm.step(live.flow, live.state, sm.Answered(), live.context)
            if decision.say or decision.actions:
                next_record = self._record(None)
                await self._deliver(live, next_record, decision, {"reason": decision.reason})
                return
        await self._after_turn(decision, actions)

    async def _after_turn(self, decision: sm.Decision, actions: list[Action]) -> None:
        ending = [reason for a in actions if (reason := ends_call(a)) is not None]
        if decision.ended or ending:
            reason = ending[0] if ending else ""
            self._turn = None  # this task is ending the call; do not cancel itself
            await self.end(reason or "flow_ended")
        else:
            await self._listen(decision)

    async def _say_fallback(self, turn_id: int) -> None:
        """A broken turn: the caller hears the fallback line and the call goes on."""
        said = Message("assistant", self._config.fallback_text, source="fallback")
        await say_line(self._send, turn_id, said, self.state, self._remember, "internal_error")
        await self._send(Listening(turn_id))

    async def leave(self, text: str, reason: str) -> None:
        """The service goes away: the turn in progress stops, the caller hears `text`, and
        the call ends."""
        if self._live is not None and not self.ended:
            await self._cancel_turn()
            said, turn_id = Message("assistant", text, source="flow"), self._record(None).turn_id
            await say_line(self._send, turn_id, said, self.state, self._remember, reason)
        await self.end(reason)

    async def _time_limit(self, seconds: float) -> None:
        await self._deps.sleep(seconds)
        log.info("call %s reached its time limit of %s s", self.call_id, seconds)
        await self.leave(self._config.time_limit_text, "time_limit")

    # Silence

    async def _listen(self, decision: sm.Decision) -> None:
        """The agent is done for now: say so, and time the caller's silence."""
        await self._send(Listening(self._turn_id, decision.silence_timeout_s))
        self._arm_silence(decision)

    def _arm_silence(self, decision: sm.Decision) -> None:
        self._silence.stop()
        if self._config.frontend_reminders:
            return
        if decision.silence_timeout_s is not None and not self.ended:
            self._silence.arm(self._tasks, decision.silence_timeout_s)

    async def _silent(self) -> None:
        if self._live is not None:
            await self._remind(self._live)

    async def _remind(self, live: LiveCall) -> None:
        """The caller has been silent: the flow decides the nudge (or gives up)."""
        live.state, decision = sm.step(live.flow, live.state, sm.Silence(), live.context)
        self._spawn(self._deliver(live, self._record(None), decision, {"reason": decision.reason}))

    # Ending

    async def _cancel_turn(self) -> None:
        turn, self._turn = self._turn, None
        if turn is not None:
            await self._tasks.cancel(turn, self._config.cancel_wait_s)

    def _remember(self, message: Message) -> None:
        if self._live is not None:
            call_history.remember(self._live.history, message, self._config.max_history_messages)

    async def end(self, reason: str) -> None:
        """End the call: stop its work, then tell the frontend."""
        if self.ended:
            return
        self.ended = True
        self._silence.stop()
        await self._cancel_turn()
        await self._send(Ended(reason))

    async def close(self) -> None:
        """The connection is gone: cancel everything, waiting a bounded time."""
        self.ended = True
        await self._tasks.cancel_all(self._config.cancel_wait_s)
