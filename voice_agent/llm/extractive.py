"""An answerer with no model: the knowledge base's own sentence that shares the most words with
the question, spoken word by word. Deterministic and always grounded (it says only what the
retrieved facts say), so scenario runs give the same answer every time and a flow can be
tried on a machine with no model at all (`VOICE_AGENT_LLM_BACKEND=extractive`). When no
sentence shares a word with the question it says nothing, and the turn gets the fallback."""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator, Sequence

from voice_agent.types import Message

WORD = re.compile(r"[a-z0-9']+")
SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
# Words that say nothing about what was asked.
STOP = frozenset(
    "a an and are as at be by can do does for from have how i in is it me my of on or our so "
    "that the their there this to we what when where which who why will with you your".split()
)


def stem(word: str) -> str:
    """Plural and singular as one ("pets" and "pet", "pharmacies" and "pharmacy")."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def content_words(text: str) -> set[str]:
    return {stem(w) for w in WORD.findall(text.lower()) if w not in STOP and len(w) > 1}


def facts_and_question(messages: Sequence[Message]) -> tuple[list[str], str]:
    """The retrieved facts (one per `- ` line) and the question, from the turn's last message
    (voice_agent/llm/prompt.py builds it so)."""
    last = messages[-1].content if messages else ""
    facts, _, question = last.rpartition("\n\nQuestion: ")
    lines = [line[2:].strip() for line in facts.splitlines() if line.startswith("- ")]
    return lines, question.strip()


def best_sentence(facts: Sequence[str], question: str) -> str | None:
    """The sentence sharing the most content words with the question; the earliest (the
    better-ranked passage) on a tie; None when none shares any."""
    asked = content_words(question)
    best, best_overlap = None, 0
    for fact in facts:
        for sentence in SENTENCE_END.split(fact):
            if sentence.rstrip().endswith("?"):
                continue  # a question in the facts (an FAQ's) is not an answer
            overlap = len(asked & content_words(sentence))
            if overlap > best_overlap:
                best, best_overlap = sentence.strip(), overlap
    return best


class ExtractiveLLM:
    name = "extractive"

    async def stream(
        self, messages: Sequence[Message], max_tokens: int
    ) -> AsyncGenerator[str, None]:
        facts, question = facts_and_question(messages)
        answer = best_sentence(facts, question)
        if answer is None:
            return
        words = answer.split(" ")
        for index, word in enumerate(words[: max(1, max_tokens)]):
            yield word if index == len(words) - 1 else word + " "
