"""The model-free answerer: the retrieved facts' sentence closest to the question, never a
question from an FAQ, plural and singular alike; nothing when no sentence shares a word."""

from __future__ import annotations

from voice_agent.llm.extractive import ExtractiveLLM, best_sentence
from voice_agent.llm.prompt import build_messages
from voice_agent.types import Passage

FACTS = [
    "What time do you open on Saturday? We open at 9 AM on Saturdays and close at 6 PM.",
    "Pet prescriptions are filled under the pet's name. Dogs and cats are welcome.",
]


def test_the_closest_sentence_answers_and_a_question_never_does() -> None:
    assert best_sentence(FACTS, "When do you open on Saturday?") == (
        "We open at 9 AM on Saturdays and close at 6 PM."
    )
    assert best_sentence(FACTS, "Do you fill prescriptions for pets?") == (
        "Pet prescriptions are filled under the pet's name."
    )
    assert best_sentence(FACTS, "Can I pay with bitcoin?") is None


async def test_it_streams_the_sentence_word_by_word_from_the_turns_prompt() -> None:
    passages = [Passage("hours", "Hours", text, 1.0) for text in FACTS]
    asked = "When do you close on Saturday?"
    messages = build_messages(business="Maple", task=None, history=[], passages=passages,
                              question=asked, history_turns=0)  # fmt: skip
    pieces = [p async for p in ExtractiveLLM().stream(messages, max_tokens=64)]
    assert "".join(pieces) == "We open at 9 AM on Saturdays and close at 6 PM."
    assert len(pieces) == 12
    assert [p async for p in ExtractiveLLM().stream(messages[:-1], max_tokens=64)] == []
