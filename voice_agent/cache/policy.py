"""When the semantic cache may serve a stored answer: a pure decision over the nearest stored
questions, with no I/O.

One nearest neighbour above a threshold is not enough: on CLINC150 it either serves few
questions or serves the wrong answer too often (see docs/cache.md). A question far from every
stored one by itself can still be answered safely when its neighbourhood agrees: several stored
questions near it carry the same answer, and the nearest question that carries another answer is
clearly further away. Stored answers are compared by `group`: answers that say the same thing
share a group (see `ResponseCache.store`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from voice_agent.cache import guards as cache_guards


@dataclass(frozen=True, slots=True)
class CachePolicy:
    """Chosen on the CLINC150 `val` stream (bench/cache_quality.py --tune), reported on `test`."""

    threshold: float = 0.88  # the nearest stored question this close may be served by itself
    neighbours: int = 5  # stored questions looked at per lookup
    agree_floor: float = 0.40  # neighbours below this similarity take no part
    agree_mass: float = 1.25  # summed similarity of the neighbours that agree with the nearest
    agree_gap: float = 0.20  # the nearest must beat the nearest disagreeing neighbour by this
    check_topics: bool = True  # refuse "the same question about another thing"


@dataclass(frozen=True, slots=True)
class Neighbour:
    similarity: float
    question: str
    group: int


@dataclass(frozen=True, slots=True)
class Verdict:
    """The neighbour to serve (an index into the neighbours given), or why none."""

    serve: int | None
    reason: str


@dataclass(frozen=True, slots=True)
class Neighbourhood:
    """What the nearest stored questions say together (`explain` shows it too)."""

    agreeing: tuple[int, ...]  # neighbours at the floor or above that carry the nearest's answer
    mass: float  # their summed similarity
    gap: float  # the nearest's similarity less that of the nearest with another answer


def neighbourhood(neighbours: Sequence[Neighbour], policy: CachePolicy) -> Neighbourhood:
    """`neighbours` most similar first, at least one."""
    nearest = neighbours[0]
    agreeing = tuple(
        i
        for i, n in enumerate(neighbours)
        if n.group == nearest.group and n.similarity >= policy.agree_floor
    )
    rival = max((n.similarity for n in neighbours if n.group != nearest.group), default=0.0)
    return Neighbourhood(
        agreeing, sum(neighbours[i].similarity for i in agreeing), nearest.similarity - rival
    )


def decide(
    question: str,
    neighbours: Sequence[Neighbour],
    policy: CachePolicy,
    near_miss: Callable[[str, str, bool], str | None] = cache_guards.near_miss,
) -> Verdict:
    """`neighbours` are the stored questions nearest to `question`, most similar first."""
    if not neighbours:
        return Verdict(None, "empty")
    around = neighbourhood(neighbours, policy)
    agreeing = list(around.agreeing)
    if neighbours[0].similarity < policy.threshold:
        if around.mass < policy.agree_mass:
            return Verdict(None, "too few close neighbours agree")
        if around.gap < policy.agree_gap:
            return Verdict(None, "a neighbour with another answer is as close")
    elif not agreeing or agreeing[0] != 0:
        agreeing.insert(0, 0)  # at the threshold the nearest serves by itself, floor or not
    refused = "no neighbour close enough"
    # Serve the closest agreeing question that no near-miss guard refuses: "my card hasn't
    # arrived" may still match a stored "card not arrived yet" below a refused "card arrived".
    for i in agreeing:
        guard = near_miss(question, neighbours[i].question, policy.check_topics)
        if guard is None:
            return Verdict(i, "served")
        refused = guard
    return Verdict(None, refused)
