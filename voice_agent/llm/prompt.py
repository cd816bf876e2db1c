"""Builds the messages for the knowledge tier.

The order keeps the model's prefix cache warm: the system prompt, the state's task and one
worked example come first and change rarely; history follows; the retrieved facts and the
question, which change every turn, come last. The example teaches a small model the shape of
a spoken answer ("We close at 8 PM tonight.") better than instructions alone.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from voice_agent.types import Message, Passage

SYSTEM_PROMPT = (
    "You are the phone assistant of {business}. Answer the caller's question in one or two "
    "short sentences, using the facts below. Speak plainly: no lists, no links."
)

EXAMPLE = (
    Message(
        "user",
        "Facts:\n- {business} closes at 8 PM on weekdays.\n\nQuestion: When do you close tonight?",
    ),
    Message("assistant", "We close at 8 PM tonight."),
)

_QA_LABELS = re.compile(r"^Q:\s*(.*?)\s*A:\s*", re.IGNORECASE | re.DOTALL)


def render_passage(passage: Passage) -> str:
    """A question/answer chunk reads as a plain fact; the labels only invite the model to
    start its answer with "A:"."""
    return _QA_LABELS.sub(r"\1 ", passage.text)


def prefix_messages(business: str, task: str | None) -> list[Message]:
    system = SYSTEM_PROMPT.format(business=business)
    if task:
        system = f"{system}\n{task}"
    example = [Message(m.role, m.content.format(business=business)) for m in EXAMPLE]
    return [Message("system", system), *example]


def answered_exchanges(history: Sequence[Message]) -> list[Message]:
    """The caller's questions and the answers the knowledge tier gave them. Small talk from
    templates and the flow's own prompts are left out: they add nothing to an answer, and a
    small model copies their wording ("How can I help you today?") instead of answering."""
    kept: list[Message] = []
    for index, message in enumerate(history):
        if message.role != "assistant" or message.source not in ("llm", None):
            continue
        if index > 0 and history[index - 1].role == "user":
            kept.extend((history[index - 1], message))
    return kept


def build_messages(
    *,
    business: str,
    task: str | None,
    history: Sequence[Message],
    passages: Sequence[Passage],
    question: str,
    history_turns: int,
) -> list[Message]:
    messages = prefix_messages(business, task)
    if history_turns > 0:
        messages.extend(answered_exchanges(history)[-2 * history_turns :])
    facts = "\n".join(f"- {render_passage(p)}" for p in passages)
    messages.append(Message("user", f"Facts:\n{facts}\n\nQuestion: {question}"))
    return messages
