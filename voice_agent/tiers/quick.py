"""The quick tier: small talk answered from the template pack in about a millisecond, before
the cache and the knowledge base. The library decides; this adapter supplies the embedding
(shared with the tiers after it), the call's words and the state's restrictions."""

from __future__ import annotations

from collections.abc import Mapping

from quick_responses.responder import QuickDecision, QuickResponder
from voice_agent.errors import EncoderSlow
from voice_agent.tiers.chain import say
from voice_agent.turn import now
from voice_agent.types import Action, HangUp, Pass, Reply, Transfer, TurnRequest

RECENT_TURNS = 4  # agent turns whose wording is not repeated word for word


def explain_decision(decision: QuickDecision) -> dict[str, object]:
    return {
        "intent": decision.intent,
        "answer": decision.answer,
        "score": round(decision.score, 4),
        "kind": decision.kind,
        "example": decision.example,
        "guard": decision.guard,
        "scorer": "head" if decision.predicted is not None else "nearest example",
        "predicted": decision.predicted,
        "candidates": [
            {"intent": c.intent, "score": c.score, "threshold": c.threshold, "example": c.example}
            for c in decision.candidates
        ],
    }


class QuickTier:
    name = "quick"

    def __init__(self, responder: QuickResponder, context: Mapping[str, str]) -> None:
        self.responder = responder
        self._context = dict(context)

    async def decide(self, request: TurnRequest) -> QuickDecision:
        """The library's decision, with the utterance's embedding when the text needs one."""
        utterance = request.utterance
        vector = utterance.known_vector
        if vector is None and self.responder.needs_vector(utterance.text):
            vector = await utterance.vector()
        return self.responder.decide(utterance.text, vector, request.quick_intents)

    async def respond(self, request: TurnRequest) -> Reply | Pass:
        started = now()
        try:
            decision = await self.decide(request)
        except EncoderSlow:
            return Pass(self.name, "encoder_slow")
        request.record.add_duration("quick", started)
        if not decision.answer or decision.intent is None:
            evidence = {"intent": decision.intent, "score": round(decision.score, 4)}
            return Pass(self.name, decision.guard or "no template fits", evidence)
        spoken = [m.content for m in request.history if m.role == "assistant" and m.content]
        text, template = self.responder.reply(
            decision,
            request.state,
            {**self._context, **request.context},
            spoken[-RECENT_TURNS:],
            spoken[-1] if spoken else None,
        )
        spec = self.responder.pack.intents[decision.intent]
        actions: list[Action] = []
        if spec.ends_call:
            actions.append(HangUp())
        elif spec.action == "transfer":
            actions.append(Transfer())
        return Reply(
            source="quick",
            pieces=say(text),
            detail={
                "quick": {
                    "intent": decision.intent,
                    "score": round(decision.score, 4),
                    "kind": decision.kind,
                    "template": template,
                },
            },
            actions=actions,
            intent_score=decision.score,
        )
