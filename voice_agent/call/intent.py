"""Which of the state's intents the caller's words name: an exact example first, else the
nearest example by embedding (computed here only when needed, and handed on to the tiers)."""

from __future__ import annotations

from quick_responses.intents import IntentMatch, IntentMatcher
from voice_agent.call.config import Embed
from voice_agent.turn import TurnRecord, now
from voice_agent.types import Vector


async def match_intent(
    intents: IntentMatcher,
    embed: Embed,
    text: str,
    candidates: dict[str, str],
    record: TurnRecord,
    vector: Vector | None,
) -> tuple[IntentMatch | None, Vector | None]:
    """The intent among `candidates`, and the utterance's vector if one was computed here or
    before (on the caller's partials); the tiers reuse it."""
    match = intents.exact(text, candidates)
    if match is not None or not intents.needs_vector(text, candidates):
        return match, vector
    if vector is None:
        started = now()
        vector = await embed(text)
        record.add_duration("embedding", started)
    return intents.nearest(vector, candidates), vector
