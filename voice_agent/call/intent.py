"""Which of the state's intents the caller's words name: an exact example first, else the
nearest example by the utterance's embedding (computed only when needed, once for the turn;
without it in time, the exact examples alone)."""

from __future__ import annotations

from quick_responses.intents import IntentMatch, IntentMatcher
from voice_agent.errors import EncoderSlow
from voice_agent.utterance import Utterance


async def match_intent(
    intents: IntentMatcher, utterance: Utterance, candidates: dict[str, str]
) -> IntentMatch | None:
    """The intent among `candidates`, if any."""
    text = utterance.text
    match = intents.exact(text, candidates)
    if match is not None or not intents.needs_vector(text, candidates):
        return match
    try:
        return intents.nearest(await utterance.vector(), candidates)
    except EncoderSlow:
        return None
