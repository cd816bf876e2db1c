"""Fakes for tests of the service's own logic: an LLM with set latencies, fixed retrieval, a
manual clock and a tier that answers with what it is given."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

from voice_agent.errors import LLMUnavailable
from voice_agent.tiers.chain import say
from voice_agent.turn import TurnRecord
from voice_agent.types import Action, Message, Pass, Passage, Reply, TurnRequest, Vector

# Every wait in the tests is multiplied by this, for slow machines.
TIME_SCALE = float(os.environ.get("VOICE_AGENT_TEST_TIME_SCALE", "1"))


def scaled(seconds: float) -> float:
    return seconds * TIME_SCALE


@dataclass
class FakeLLM:
    """Streams `tokens` after `first_token_s`, one every `token_interval_s`; or fails."""

    tokens: Sequence[str] = ("Maple ", "Street ", "Pharmacy ", "opens ", "at ", "9 ", "AM.")
    first_token_s: float = 0.0
    token_interval_s: float = 0.0
    stall_after: int | None = None  # stop sending (but keep the stream open) after N tokens
    fail: bool = False
    name: str = "fake"
    calls: list[list[Message]] = field(default_factory=list)
    closed: int = 0
    tokens_sent: int = 0

    async def stream(self, messages: Sequence[Message], max_tokens: int) -> AsyncIterator[str]:
        self.calls.append(list(messages))
        try:
            if self.fail:
                raise LLMUnavailable("fake LLM is down")
            await asyncio.sleep(self.first_token_s)
            for index, token in enumerate(self.tokens):
                if self.stall_after is not None and index >= self.stall_after:
                    await asyncio.sleep(3600)
                if index:
                    await asyncio.sleep(self.token_interval_s)
                self.tokens_sent += 1
                yield token
        finally:
            self.closed += 1


@dataclass
class FakeRetriever:
    passages: Sequence[Passage] = (
        Passage("hours", "Hours", "Maple Street Pharmacy opens at 9 AM on Saturdays."),
    )

    async def retrieve(
        self,
        query: str,
        record: TurnRecord | None = None,
        vector: Vector | None = None,
        lexical_only: bool = False,
    ) -> list[Passage]:
        return list(self.passages)


class ManualClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class ScriptedTier:
    """Answers every turn with `text`, then asks the frontend for `actions`."""

    text: str = "Goodbye!"
    actions: Sequence[Action] = ()
    name: str = "knowledge"  # stands in for the knowledge tier
    requests: list[TurnRequest] = field(default_factory=list)

    async def respond(self, request: TurnRequest) -> Reply:
        self.requests.append(request)
        return Reply(source="flow", pieces=say(self.text), actions=list(self.actions))


@dataclass
class FailingTier:
    """A tier with a bug: it raises for every turn, or only for the call `only_call` (and
    passes the others on)."""

    only_call: str | None = None
    name: str = "knowledge"  # stands in for the knowledge tier

    async def respond(self, request: TurnRequest) -> Reply | Pass:
        if self.only_call is None or request.call_id == self.only_call:
            raise RuntimeError("a bug in a tier")
        return Pass(self.name, "not this call")


class VirtualClock:
    """A clock for timeout tests: `sleep` waits until `advance` moves the clock past its
    deadline, so a test decides when time passes and never waits on the real clock."""

    def __init__(self) -> None:
        self.now = 0.0
        self._sleepers: list[tuple[float, asyncio.Future[None]]] = []

    async def sleep(self, seconds: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._sleepers.append((self.now + seconds, future))
        await future

    async def advance(self, seconds: float) -> None:
        """Move the clock, wake every sleeper now due, and let what they start run."""
        self.now += seconds
        due = [f for at, f in self._sleepers if at <= self.now]
        self._sleepers = [(at, f) for at, f in self._sleepers if at > self.now]
        for future in due:
            if not future.done():
                future.set_result(None)
        await settle()


async def settle(rounds: int = 20) -> None:
    """Let every ready task run until each waits on something not yet due."""
    for _ in range(rounds):
        await asyncio.sleep(0)
