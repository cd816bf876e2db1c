from __future__ import annotations

from voice_agent.llm.prompt import answered_exchanges, build_messages, render_passage
from voice_agent.types import Message, Passage


def test_only_the_knowledge_tiers_exchanges_reach_the_prompt() -> None:
    history = [
        Message("assistant", "Thanks for calling. How can I help?", source="flow"),
        Message("user", "hi there"),
        Message("assistant", "Hello! How can I help you today?", source="quick"),
        Message("user", "When do you open?"),
        Message("assistant", "We open at 9 AM.", source="llm"),
        Message("user", "thanks"),
        Message("assistant", "You're welcome!", source="quick"),
        Message("user", "Do you deliver?"),
        Message("assistant", "Sorry, I can't look that up right now.", source="fallback"),
    ]
    assert [m.content for m in answered_exchanges(history)] == [
        "When do you open?",
        "We open at 9 AM.",
    ]


def test_the_prompt_keeps_a_stable_prefix_and_ends_with_facts_and_question() -> None:
    messages = build_messages(
        business="Maple Street Pharmacy",
        task="Answer questions.",
        history=[Message("user", "hi"), Message("assistant", "Hi!", source="quick")],
        passages=[Passage("faq", "FAQ", "Q: Do you deliver? A: Yes, within 5 miles.")],
        question="Do you deliver?",
        history_turns=4,
    )
    assert messages[0].role == "system" and "Answer questions." in messages[0].content
    assert [m.role for m in messages] == ["system", "user", "assistant", "user"]
    assert messages[-1].content == (
        "Facts:\n- Do you deliver? Yes, within 5 miles.\n\nQuestion: Do you deliver?"
    )


def test_question_answer_labels_are_not_shown_to_the_model() -> None:
    assert render_passage(Passage("f", "F", "Q: When? A: At 9.")) == "When? At 9."
