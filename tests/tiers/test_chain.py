"""The responder chain: tiers answer with a Pass or a Reply; the passes are kept in order, shown
in the reply's detail and handed to the tiers that follow the answer (the cache learns from
them), and a tier the state does not allow is never asked."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from voice_agent.tiers.chain import ResponderChain, say
from voice_agent.turn import TurnRecord
from voice_agent.types import Pass, Reply, TurnRequest, Vector
from voice_agent.utterance import Utterance


async def never_embedded(text: str) -> Vector:
    raise AssertionError("no tier here embeds")


def request(tiers: Sequence[str] | None = None) -> TurnRequest:
    utterance = Utterance("where do I park?", never_embedded)
    return TurnRequest("c1", 1, utterance, "answer", (), TurnRecord("c1", 1), tiers=tiers)


@dataclass
class Passing:
    name: str
    asked: int = 0

    async def respond(self, request: TurnRequest) -> Reply | Pass:
        self.asked += 1
        return Pass(self.name, "nothing fits", {"best": 0.5})


@dataclass
class Following:
    name: str = "cache"
    seen: list[Pass] = field(default_factory=list)

    async def respond(self, request: TurnRequest) -> Reply | Pass:
        return Pass(self.name, "below threshold", {"best_similarity": 0.7})

    def follow(self, request: TurnRequest, reply: Reply, passes: Sequence[Pass]) -> Reply:
        self.seen.extend(passes)
        return reply


@dataclass
class Answering:
    name: str = "knowledge"

    async def respond(self, request: TurnRequest) -> Reply | Pass:
        return Reply(source="llm", pieces=say("Behind the store."))


async def test_passes_are_kept_in_order_and_reach_the_follower() -> None:
    quick, cache = Passing("quick"), Following()
    chain = ResponderChain([quick, cache, Answering()], fallback_text="sorry")
    reply = await chain.respond(request())
    assert reply.source == "llm" and reply.detail["passed"] == ["quick", "cache"]
    assert [(p.tier, p.reason) for p in cache.seen] == [
        ("quick", "nothing fits"),
        ("cache", "below threshold"),
    ]


async def test_a_tier_the_state_does_not_allow_is_never_asked() -> None:
    quick = Passing("quick")
    chain = ResponderChain([quick, Answering()], fallback_text="sorry")
    reply = await chain.respond(request(tiers=("knowledge",)))
    assert quick.asked == 0
    assert reply.detail["passed"] == ["quick (not allowed in this state)"]
    assert reply.source == "llm"


async def test_when_every_tier_passes_the_fallback_says_why() -> None:
    chain = ResponderChain([Passing("quick"), Passing("cache")], fallback_text="sorry")
    reply = await chain.respond(request())
    assert reply.outcome().fallback_reason == "no_tier_answered"
    assert "".join([p async for p in reply.pieces]) == "sorry"
    assert await chain.would_be(request(tiers=("quick", "cache"))) is None
