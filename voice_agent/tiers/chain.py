"""The responder chain: tiers behind one interface, tried in order until one answers.
The chain is itself a tier."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from typing import Protocol, runtime_checkable

from voice_agent.turn import now
from voice_agent.types import Pass, Reply, Tier, TurnRequest, WouldBe


async def say(text: str) -> AsyncGenerator[str, None]:
    """A reply stream of one fixed line."""
    yield text


@runtime_checkable
class Follower(Protocol):
    """A tier that watches the replies of the tiers after it (the cache stores them); `passes`
    are the earlier tiers' passes for this turn, its own among them."""

    def follow(self, request: TurnRequest, reply: Reply, passes: Sequence[Pass]) -> Reply: ...


class ResponderChain:
    name = "chain"

    def __init__(self, tiers: Sequence[Tier], fallback_text: str) -> None:
        if not tiers:
            raise ValueError("a responder chain needs at least one tier")
        self.tiers = list(tiers)
        self._fallback_text = fallback_text

    async def respond(self, request: TurnRequest) -> Reply:
        passes: list[Pass] = []  # the tiers asked, for the followers
        shown: list[str] = []  # every tier before the answer, for the turn's detail
        for tier in self.tiers:
            if request.tiers is not None and tier.name not in request.tiers:
                shown.append(f"{tier.name} (not allowed in this state)")
                continue
            answer = await tier.respond(request)
            if isinstance(answer, Reply):
                if shown:
                    answer.detail.setdefault("passed", shown)
                return self._followed(request, answer, tier, passes)
            passes.append(answer)
            shown.append(tier.name)
        return Reply(
            source="fallback",
            pieces=say(self._fallback_text),
            detail={"reason": "no_tier_answered", "passed": shown},
            fallback_reason="no_tier_answered",
        )

    async def would_be(self, request: TurnRequest) -> WouldBe | None:
        """What the tiers allowed by `request.tiers` would answer, without serving it (shadow
        mode). Only tiers that answer at once belong there: their reply is read to its end."""
        started = now()
        for tier in self.tiers:
            if request.tiers is None or tier.name not in request.tiers:
                continue
            reply = await tier.respond(request)
            if isinstance(reply, Reply):
                text = "".join([piece async for piece in reply.pieces])
                latency_ms = round((now() - started) * 1000, 3)
                return WouldBe(reply.source, text, latency_ms, reply.detail, reply.intent_score)
        return None

    def _followed(
        self, request: TurnRequest, reply: Reply, answering: Tier, passes: Sequence[Pass]
    ) -> Reply:
        allowed = request.tiers
        for tier in self.tiers:
            if tier is answering:
                break
            # In shadow mode the fast tiers do not serve, but they still learn (the cache
            # stores answers), so that what they would have served can be measured.
            if isinstance(tier, Follower) and (
                allowed is None or tier.name in allowed or request.shadow
            ):
                reply = tier.follow(request, reply, passes)
        return reply
