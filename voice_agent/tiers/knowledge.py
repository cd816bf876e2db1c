"""The knowledge tier: retrieve from the knowledge base, then stream the LLM's answer inside
the turn's budgets, with a spoken filler when the first token is late and a spoken fallback
when the answer cannot be had in time."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import aclosing
from dataclasses import dataclass

from voice_agent.errors import EncoderSlow, LLMError, LLMTimeout
from voice_agent.llm.circuit_breaker import CircuitBreaker
from voice_agent.llm.guard import guarded
from voice_agent.llm.prompt import build_messages
from voice_agent.llm.speech import SpeechFilter
from voice_agent.tiers.chain import say
from voice_agent.turn import now
from voice_agent.types import Budgets, LLMClient, Message, Reply, Retriever, TurnRequest


@dataclass(frozen=True, slots=True)
class KnowledgeConfig:
    business: str
    budgets: Budgets
    max_tokens: int
    max_sentences: int
    prompt_passages: int
    history_turns: int
    filler_text: str
    fallback_text: str


def _after(spoken: bool, text: str) -> str:
    """Text that follows something already said needs a space between the two."""
    return " " + text.lstrip() if spoken else text


class KnowledgeTier:
    name = "knowledge"

    def __init__(
        self,
        retriever: Retriever,
        llm: LLMClient,
        breaker: CircuitBreaker,
        config: KnowledgeConfig,
    ) -> None:
        self._retriever = retriever
        self._llm = llm
        self._breaker = breaker
        self._config = config

    async def respond(self, request: TurnRequest) -> Reply:
        if not self._breaker.allow():
            return Reply(
                source="fallback",
                pieces=say(self._config.fallback_text),
                detail={"reason": "circuit_open", "llm": self._llm.name},
                fallback_reason="circuit_open",
            )
        reply = Reply(source="llm", pieces=say(""), detail={"llm": self._llm.name})
        reply.pieces = self._answer(request, reply)
        return reply

    async def _prompt(self, request: TurnRequest, reply: Reply) -> list[Message]:
        """The passages for the question (retrieved now unless already on the partials) and
        the prompt made of them; the reply notes which passages it is made from."""
        cfg = self._config
        utterance = request.utterance
        passages = utterance.passages
        if passages is None:
            try:
                vector = await utterance.vector()
            except EncoderSlow:  # words alone: the turn's answer is not held up by the encoder
                reply.detail["retrieval"] = "lexical (encoder slow)"
                vector = None
            passages = await self._retriever.retrieve(
                utterance.text, request.record, vector, lexical_only=vector is None
            )
        reply.detail["passages"] = [p.doc_id for p in passages]
        reply.context = [p.text for p in passages[: cfg.prompt_passages]]
        return build_messages(
            business=cfg.business,
            task=request.task,
            history=request.history,
            passages=passages[: cfg.prompt_passages],
            question=request.text,
            history_turns=cfg.history_turns,
        )

    async def _answer(self, request: TurnRequest, reply: Reply) -> AsyncGenerator[str, None]:
        cfg = self._config
        record = request.record
        messages = await self._prompt(request, reply)
        speech = SpeechFilter(cfg.max_sentences)
        answer: list[str] = []  # what the model said, without the filler
        spoke_answer = False
        spoke_filler = False
        llm_started = now()
        outcome_recorded = False
        try:
            budgets = request.budgets or cfg.budgets
            stream = guarded(self._llm.stream(messages, cfg.max_tokens), budgets)
            async with aclosing(stream):
                async for kind, token in stream:
                    if kind == "filler":
                        reply.detail["filler"] = True
                        spoke_filler = True
                        yield cfg.filler_text
                        continue
                    if "llm_first_token" not in record.stages_ms:
                        record.add_duration("llm_first_token", llm_started)
                    text = speech.feed(token)
                    if text:
                        answer.append(text)
                        yield _after(spoke_filler and not spoke_answer, text)
                        spoke_answer = True
                    if speech.done:
                        break
            tail = speech.flush()
            if tail:
                answer.append(tail)
                yield _after(spoke_filler and not spoke_answer, tail)
                spoke_answer = True
            record.add_duration("llm_total", llm_started)
            self._breaker.record_success()
            outcome_recorded = True
            if not spoke_answer:
                reply.source = "fallback"
                reply.fallback_reason = reply.detail["reason"] = "empty_answer"
                yield _after(spoke_filler, cfg.fallback_text)
            else:
                reply.answer = "".join(answer).strip()
        except LLMError as exc:
            self._breaker.record_failure()
            outcome_recorded = True
            reply.source = "fallback"
            reason = f"timeout_{exc.phase}" if isinstance(exc, LLMTimeout) else "llm_error"
            reply.fallback_reason = reply.detail["reason"] = reason
            reply.detail["error"] = str(exc)
            reply.detail["partial"] = spoke_answer
            yield _after(spoke_answer or spoke_filler, cfg.fallback_text)
        finally:
            if not outcome_recorded:  # cancelled by barge-in or hang-up
                self._breaker.record_abandoned()
