"""What the call's history holds: the messages the caller said and heard, in order, bounded.
Pure functions over the list; the session owns the list."""

from __future__ import annotations

from collections.abc import Sequence

from voice_agent.types import Message


def remember(history: list[Message], message: Message, limit: int) -> None:
    """Append `message`, dropping the oldest past `limit`."""
    history.append(message)
    overflow = len(history) - limit
    if overflow > 0:
        del history[:overflow]


def keep_heard(history: list[Message], heard: str) -> None:
    """A barge-in: the agent's last message becomes what the caller heard of it (removed when
    nothing was heard). Nothing changes when the agent has said nothing since the caller's last
    turn."""
    for index in range(len(history) - 1, -1, -1):
        message = history[index]
        if message.role == "assistant":
            if heard.strip():
                message.content = heard.strip()
            else:
                del history[index]
            return
        if message.role == "user":
            return


def from_transcript(
    history: Sequence[Message], turns: Sequence[tuple[str, str]], limit: int
) -> list[Message]:
    """The frontend's transcript as the history. An agent turn keeps the source it had here (a
    flow prompt stays out of the LLM's history) when it is what the session said, or the start
    of it (cut short by the caller)."""
    said = [m for m in history if m.role == "assistant"]
    out = []
    for role, text in turns:
        if not text.strip():
            continue
        if role != "assistant":
            out.append(Message("user", text))
            continue
        source = next((m.source for m in said if m.content.startswith(text.strip())), None)
        out.append(Message("assistant", text, source=source))
    return out[-limit:]
