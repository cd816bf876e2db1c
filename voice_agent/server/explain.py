"""What every tier would decide for one utterance in one state, with scores, without speaking
or calling the LLM: the on-call engineer's answer to "why did the agent say that?"."""

from __future__ import annotations

from typing import Any

import state_machine as sm
from quick_responses.intents import IntentMatch
from voice_agent.cache import guards as cache_guards
from voice_agent.cache.policy import Neighbour, neighbourhood
from voice_agent.cache.store import CacheHit, CacheScope
from voice_agent.call.intent import match_intent
from voice_agent.call.plan import TurnDefaults, TurnPlan, plan_turn
from voice_agent.errors import ExplainError
from voice_agent.server.service import Service
from voice_agent.tiers.quick import QuickTier, explain_decision
from voice_agent.turn import TurnRecord
from voice_agent.types import Vector
from voice_agent.utterance import Utterance


async def explain(
    service: Service,
    text: str,
    flow_name: str | None = None,
    state: str | None = None,
    call_id: str = "",
) -> dict[str, Any]:
    """Each tier's verdict, and which would serve: through the same intent matching and turn
    plan a call uses, with the run-time flags as they are now (mode, canary share by
    `call_id`, fast tiers switched off)."""
    flow = service.flows.get(flow_name)
    if flow is None:
        raise ExplainError(f"no flow named {flow_name!r}; known: {', '.join(service.flows.flows)}")
    state = state or flow.start
    if state not in flow.states:
        raise ExplainError(f"flow {flow.name!r} has no state {state!r}")
    context = {"business": service.settings.business_name, **flow.context}
    call = sm.CallState(state=state)
    record = TurnRecord("explain", 0)
    utterance = Utterance(text, service.encoder.embed, record)
    candidates = sm.candidate_intents(flow, call)
    match = await match_intent(service.intents, utterance, candidates)
    vector = await utterance.vector()  # every tier's verdict is shown, so every tier's input
    _, decision = sm.step(flow, call, sm.Utterance(text, match.intent if match else None), context)
    config = service.call_config
    flags = service.flags.current
    plan = plan_turn(decision, flags, TurnDefaults(config.mode, config.budgets), call_id)
    out: dict[str, Any] = {
        "text": text,
        "flow": explain_flow(flow.name, state, candidates, match, decision),
        "plan": {
            "mode": plan.mode,
            "tiers": list(plan.tiers),
            "shadow_tiers": list(plan.shadow_tiers),
        },
    }
    quick = next((t for t in service.responder.tiers if isinstance(t, QuickTier)), None)
    if quick is not None:
        quick_decision = quick.responder.decide(text, vector, decision.quick_intents)
        out["quick"] = explain_decision(quick_decision)
    else:
        out["quick"] = {"enabled": False}
    out["cache"] = explain_cache(service, text, vector, flow.name, decision.state)
    passages = await service.knowledge.retrieve(text, record, vector)
    out["knowledge"] = {
        "passages": [
            {"doc_id": p.doc_id, "title": p.title, "score": round(p.score, 5), "text": p.text}
            for p in passages
        ],
        "prompt_passages": service.settings.prompt_passages,
    }
    out["served_by"] = served_by(service, decision, plan, out)
    return out


def served_by(
    service: Service, decision: sm.Decision, plan: TurnPlan, verdicts: dict[str, Any]
) -> str:
    """The tier that would serve: the first the plan allows, in the chain's order, that
    answers (the knowledge tier always does)."""
    if not decision.respond:
        return "flow"
    for tier in service.responder.tiers:
        if tier.name not in plan.tiers:
            continue
        if tier.name == "quick" and verdicts["quick"].get("answer"):
            return "quick"
        if tier.name == "cache" and verdicts["cache"].get("hit"):
            return "cache"
        if tier.name == "knowledge":
            return "knowledge"
    return "fallback"


def explain_flow(
    flow: str,
    state: str,
    candidates: dict[str, str],
    match: IntentMatch | None,
    decision: sm.Decision,
) -> dict[str, Any]:
    """The flow's side: the intents the state listens for, the one matched, where it leads."""
    intent = None
    if match is not None:
        intent = {
            "name": match.intent,
            "score": match.score,
            "kind": match.kind,
            "example": match.example,
        }
    return {
        "name": flow,
        "state": state,
        "candidate_intents": candidates,
        "intent": intent,
        "next_state": decision.state,
        "reason": decision.reason,
        "says": decision.say,
        "answers_with_tiers": decision.respond,
        "tiers": list(decision.tiers),
    }


def explain_cache(
    service: Service, text: str, vector: Vector, flow: str, state: str
) -> dict[str, Any]:
    """The cache's verdict in the state the utterance would be answered in, and the nearest
    stored questions it judged."""
    if service.cache is None:
        return {"enabled": False}
    cache = service.cache.cache
    scope = CacheScope(flow, state, service.knowledge.fingerprint, service.settings.language)
    result = cache.lookup(text, vector, scope)
    policy = cache.policy
    nearest = cache.nearest(vector, scope, policy.neighbours)
    out: dict[str, Any] = {
        "hit": isinstance(result, CacheHit),
        "neighbours": [
            {
                "question": e.question,
                "answer": e.answer,
                "similarity": round(s, 4),
                "group": e.group,
                # Which near-miss guard would refuse serving this one (None: none would).
                "refused_by": cache_guards.near_miss(text, e.question, policy.check_topics),
            }
            for s, e in nearest
        ],
    }
    if nearest:
        around = neighbourhood([Neighbour(s, e.question, e.group) for s, e in nearest], policy)
        out["neighbourhood"] = {
            "agreeing_mass": round(around.mass, 4),
            "needed_mass": policy.agree_mass,
            "gap_to_rival": round(around.gap, 4),
            "needed_gap": policy.agree_gap,
            "threshold": policy.threshold,
        }
    if isinstance(result, CacheHit):
        out.update(kind=result.kind, answer=result.entry.answer, stored_for=result.entry.question)
    else:
        out["reason"] = result.reason
    return out
