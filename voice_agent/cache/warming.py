"""Answers put in the cache before any caller asks: the knowledge base's FAQ pairs ("Q: ..."
then "A: ...") and files of answers generated offline by `voice-agent warm`.

Warm answers go to every state that answers questions and may be cached (a task, cacheable,
the cache tier allowed), under the current knowledge base; they do not expire with the TTL,
only with the knowledge base they were made from.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from state_machine import Flow
from voice_agent.cache.store import CacheScope
from voice_agent.errors import ConfigError
from voice_agent.rag.documents import Document
from voice_agent.turn import TurnRecord
from voice_agent.types import Budgets, Reply, Responder, TurnRequest
from voice_agent.utterance import Embed, Utterance

OFFLINE_BUDGETS = Budgets(first_token_s=60, stall_s=60, total_s=300)

_PAIR = re.compile(
    r"^Q:\s*(?P<q>.+?)\s*\n\s*A:\s*(?P<a>.+?)\s*(?=\n\s*\n|\n\s*Q:|\Z)",
    re.IGNORECASE | re.MULTILINE | re.DOTALL,
)


@dataclass(frozen=True, slots=True)
class WarmAnswer:
    question: str
    answer: str
    flow: str | None = None  # None: every answering state of every flow
    state: str | None = None


def warm_answer(question: str, reply: Reply, flow: str, state: str) -> WarmAnswer | None:
    """The LLM's complete answer to `question` as a warm entry; None when the reply was not
    one (a fallback, an empty or cut-off answer): nothing else is worth serving again."""
    if reply.source != "llm" or not reply.answer:
        return None
    return WarmAnswer(question, reply.answer, flow, state)


def faq_pairs(documents: Iterable[Document]) -> list[WarmAnswer]:
    pairs = []
    for doc in documents:
        for match in _PAIR.finditer(doc.text):
            question = " ".join(match["q"].split())
            answer = " ".join(match["a"].split())
            if question and answer:
                pairs.append(WarmAnswer(question, answer))
    return pairs


def answering_scopes(flows: Iterable[Flow], kb_version: str, language: str) -> list[CacheScope]:
    scopes = []
    for flow in flows:
        for state in flow.states.values():
            cacheable = state.cacheable if state.cacheable is not None else flow.defaults.cacheable
            allowed = state.tiers is None or "cache" in state.tiers
            if state.task is not None and cacheable and allowed and state.collect is None:
                scopes.append(CacheScope(flow.name, state.name, kb_version, language))
    return scopes


def scopes_for(answer: WarmAnswer, scopes: Sequence[CacheScope]) -> list[CacheScope]:
    return [
        s
        for s in scopes
        if (answer.flow is None or s.flow == answer.flow)
        and (answer.state is None or s.state == answer.state)
    ]


def read_warm_file(path: Path) -> list[WarmAnswer]:
    """JSON lines of {"question", "answer", "flow"?, "state"?}, as `voice-agent warm` writes."""
    answers = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ConfigError(f"VOICE_AGENT_CACHE_WARM_FILE: cannot read {path}: {exc}") from exc
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            answers.append(
                WarmAnswer(
                    str(row["question"]), str(row["answer"]), row.get("flow"), row.get("state")
                )
            )
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise ConfigError(
                f"VOICE_AGENT_CACHE_WARM_FILE: {path}:{number}: expected a JSON object with "
                f'"question" and "answer" ({exc})'
            ) from exc
    return answers


def write_warm_file(path: Path, answers: Iterable[WarmAnswer]) -> int:
    count = 0
    with path.open("w", encoding="utf-8") as out:
        for a in answers:
            row = {"question": a.question, "answer": a.answer, "flow": a.flow, "state": a.state}
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
            count += 1
    return count


async def generate(
    responder: Responder,
    embed: Embed,
    questions: Iterable[str],
    flow: str,
    state: str,
) -> AsyncIterator[tuple[str, Reply]]:
    """Answer each question through the knowledge tier alone, with budgets generous enough
    for a slow machine: warming runs before traffic, where waiting costs nobody."""
    for number, question in enumerate(questions, 1):
        request = TurnRequest(
            call_id="warm",
            turn_id=number,
            utterance=Utterance(question, embed),
            state=state,
            history=(),
            record=TurnRecord("warm", number),
            budgets=OFFLINE_BUDGETS,
            cacheable=False,  # nothing here goes through the cache tier
            tiers=("knowledge",),
            flow=flow,
        )
        reply = await responder.respond(request)
        async for _ in reply.pieces:
            pass
        yield question, reply
