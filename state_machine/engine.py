"""Runs a flow: pure functions from (flow, call state, event) to (new call state, decision).

The engine does no I/O and keeps no state of its own. The service matches intents, speaks
what a decision says, runs the tiers when a decision asks it to answer, performs actions and
fires silence events; the engine decides.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from state_machine.errors import TransitionError
from state_machine.model import ALL_TIERS, Action, Budgets, Flow, State, Tier
from state_machine.slots import extract, valid_digits

# Events


@dataclass(frozen=True, slots=True)
class Utterance:
    text: str
    intent: str | None = None  # matched by the service among `candidate_intents`


@dataclass(frozen=True, slots=True)
class Dtmf:
    digit: str


@dataclass(frozen=True, slots=True)
class Silence:
    """The caller said nothing for the state's silence timeout."""


@dataclass(frozen=True, slots=True)
class Answered:
    """The tiers finished answering in the current state."""


Event = Utterance | Dtmf | Silence | Answered

SILENCE_GOODBYE = "I'll let you go for now. Please call back any time. Goodbye."


@dataclass(frozen=True, slots=True)
class CallState:
    state: str
    slots: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    reprompts: int = 0
    silences: int = 0
    digits: str = ""  # keyed digits waiting to complete a slot
    ended: bool = False


@dataclass(frozen=True, slots=True)
class Decision:
    state: str
    say: str | None = None  # the flow's own words, to speak now
    actions: tuple[Action, ...] = ()
    respond: bool = False  # answer the utterance with the tiers, under `task` and `budgets`
    task: str | None = None
    tiers: tuple[Tier, ...] = ALL_TIERS
    quick_intents: tuple[str, ...] | None = None
    budgets: Budgets = field(default_factory=Budgets)
    cacheable: bool = True
    silence_timeout_s: float | None = None  # None: no reminder (the call has ended)
    ended: bool = False
    reason: str = ""


def candidate_intents(flow: Flow, call: CallState) -> dict[str, str]:
    """The intents that would change something in the current state, each with the state it
    leads to: the only ones the service needs to look for, which keeps matching both fast
    and hard to fool."""
    state = flow.states[call.state]
    return {**flow.on, **state.on}


def render(text: str | None, slots: Mapping[str, str], context: Mapping[str, str]) -> str | None:
    if text is None:
        return None
    values = {**context, **slots}
    return text.format_map(_Missing(values))


class _Missing(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return ""


def _settled(flow: Flow, call: CallState, say: list[str], reason: str, **extra: object) -> Decision:
    state = flow.states[call.state]
    ended = call.ended
    tiers: tuple[Tier, ...] = state.tiers if state.tiers is not None else ALL_TIERS
    if state.collect is not None:
        tiers = ()
    return Decision(
        state=call.state,
        say=" ".join(s for s in say if s) or None,
        actions=extra.pop("actions", ()),  # type: ignore[arg-type]
        respond=bool(extra.pop("respond", False)),
        task=state.task,
        tiers=tiers,
        quick_intents=state.quick_intents,
        budgets=state.budgets.over(flow.defaults.budgets),
        cacheable=state.cacheable if state.cacheable is not None else flow.defaults.cacheable,
        silence_timeout_s=None
        if ended
        else (state.silence_timeout_s or flow.defaults.silence_timeout_s),
        ended=ended,
        reason=reason,
    )


def _enter(
    flow: Flow,
    call: CallState,
    target: str,
    context: Mapping[str, str],
    reason: str,
    answer: bool = False,
    said: tuple[str, ...] = (),
) -> tuple[CallState, Decision]:
    """Move to `target`: speak its words, take its action, pass through states that only
    speak and move on. `answer` asks the tiers to answer the utterance there."""
    say = list(said)
    actions: list[Action] = []
    for _ in range(len(flow.states) + 1):  # a pass-through chain visits each state once
        state = flow.states[target]
        call = CallState(state=target, slots=call.slots)
        say.append(render(state.say, call.slots, context) or "")
        if state.action is not None:
            actions.append(
                Action(state.action.name, render(state.action.value, call.slots, context))
            )
            if state.action.ends_call:
                call = replace(call, ended=True)
                return call, _settled(flow, call, say, reason, actions=tuple(actions))
        if _passes_through(state) and state.next is not None:
            target = state.next
            continue
        respond = answer and state.task is not None
        return call, _settled(flow, call, say, reason, actions=tuple(actions), respond=respond)
    raise TransitionError(target, "enter", "states that only speak and move on form a loop")


def _passes_through(state: State) -> bool:
    return (
        state.next is not None
        and state.collect is None
        and state.task is None
        and not state.on
        and state.otherwise is None
    )


def start(flow: Flow, context: Mapping[str, str]) -> tuple[CallState, Decision]:
    """Begin a call in the flow's start state."""
    return _enter(flow, CallState(state=flow.start), flow.start, context, "start")


def _retry(
    flow: Flow, call: CallState, context: Mapping[str, str], reason: str
) -> tuple[CallState, Decision]:
    """The caller's words did not fit: ask again, or give up to on_fail."""
    state = flow.states[call.state]
    call = replace(call, reprompts=call.reprompts + 1, digits="")
    if call.reprompts > state.max_reprompts and state.on_fail is not None:
        return _enter(flow, call, state.on_fail, context, f"{reason}; gave up")
    again = render(state.reprompt or state.say, call.slots, context)
    return call, _settled(flow, call, [again or ""], reason)


def _fill(
    flow: Flow, call: CallState, value: str, context: Mapping[str, str]
) -> tuple[CallState, Decision]:
    state = flow.states[call.state]
    assert state.collect is not None and state.next is not None
    slots = MappingProxyType({**call.slots, state.collect.slot: value})
    call = replace(call, slots=slots)
    return _enter(flow, call, state.next, context, f"slot {state.collect.slot} filled")


def _transition_for(flow: Flow, state: State, intent: str | None) -> str | None:
    if intent is None:
        return None
    return state.on.get(intent) or flow.on.get(intent)


def step(
    flow: Flow, call: CallState, event: Event, context: Mapping[str, str]
) -> tuple[CallState, Decision]:
    """Apply one event. Raises TransitionError for an event the state cannot take."""
    name = type(event).__name__
    if call.ended:
        raise TransitionError(call.state, name, "the call has ended")
    state = flow.states[call.state]
    if isinstance(event, Utterance):
        return _utterance(flow, call, state, event, context)
    if isinstance(event, Dtmf):
        return _dtmf(flow, call, state, event.digit, context)
    if isinstance(event, Silence):
        return _silence(flow, call, state, context)
    if state.task is None:
        raise TransitionError(call.state, name, "this state has no task to answer")
    if state.next is not None:
        return _enter(flow, call, state.next, context, "answered")
    call = replace(call, reprompts=0, silences=0)
    return call, _settled(flow, call, [], "answered")


def _utterance(
    flow: Flow, call: CallState, state: State, event: Utterance, context: Mapping[str, str]
) -> tuple[CallState, Decision]:
    call = replace(call, silences=0)
    target = _transition_for(flow, state, event.intent)
    if target is not None:
        return _enter(flow, call, target, context, f"intent {event.intent}", answer=True)
    if state.collect is not None:
        value = extract(state.collect, event.text)
        if value is not None:
            return _fill(flow, call, value, context)
        return _retry(flow, call, context, f"no valid {state.collect.slot}")
    if state.otherwise is not None:
        return _enter(flow, call, state.otherwise, context, "otherwise", answer=True)
    if state.task is not None:
        return call, _settled(flow, call, [], "answer", respond=True)
    return _retry(flow, call, context, "not understood")


def _dtmf(
    flow: Flow, call: CallState, state: State, digit: str, context: Mapping[str, str]
) -> tuple[CallState, Decision]:
    call = replace(call, silences=0)
    if state.collect is None:
        target = _transition_for(flow, state, f"dtmf_{digit}")
        if target is not None:
            return _enter(flow, call, target, context, f"key {digit}")
        return call, _settled(flow, call, [], f"key {digit} ignored")
    if digit == "*":
        call = replace(call, digits="")
        return call, _settled(flow, call, [], "keyed digits cleared")
    digits = call.digits if digit == "#" else call.digits + digit
    complete = digit == "#" or len(digits) >= state.collect.max_len
    if not complete:
        call = replace(call, digits=digits)
        return call, _settled(flow, call, [], "keyed digit")
    if valid_digits(state.collect, digits):
        return _fill(flow, replace(call, digits=""), digits, context)
    return _retry(flow, call, context, f"keyed {state.collect.slot} not valid")


def _silence(
    flow: Flow, call: CallState, state: State, context: Mapping[str, str]
) -> tuple[CallState, Decision]:
    call = replace(call, silences=call.silences + 1)
    if call.silences > state.max_reprompts:
        if state.on_fail is not None:
            return _enter(flow, call, state.on_fail, context, "silent; gave up")
        call = replace(call, ended=True)
        return call, _settled(
            flow, call, [SILENCE_GOODBYE], "silent; hung up", actions=(Action("hangup"),)
        )
    reminder = render(state.reprompt, call.slots, context) or flow.defaults.reminder
    return call, _settled(flow, call, [reminder], "silence reminder")
