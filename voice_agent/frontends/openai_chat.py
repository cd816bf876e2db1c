"""The OpenAI-compatible chat-completions wire format (Vapi's "custom LLM", any OpenAI client):
the request body in, chunks and completions out. Pure conversions; chat_api.py serves them.

A request carries the whole conversation; the caller's turn is its last user message. Vapi adds
`call` (with `id`), `metadata` and `customer`; `call.id` keeps one call session across
requests. Fields the service does not use are accepted and ignored.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from voice_agent.errors import ChatError
from voice_agent.frontends.frames import clean_text
from voice_agent.types import Message


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: str
    content: str | list[dict[str, Any]] | None = None


class ChatBody(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: str = "voice-agent"
    messages: list[ChatMessage] = Field(min_length=1, max_length=500)
    stream: bool = False
    call: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None


def text_of(message: ChatMessage) -> str:
    """Content as plain text: a string, or the text parts of a list of parts."""
    if isinstance(message.content, str):
        return clean_text(message.content)
    parts = message.content or []
    text = " ".join(str(p.get("text", "")) for p in parts if p.get("type") == "text")
    return clean_text(text).strip()


def call_id(body: ChatBody) -> str | None:
    value = (body.call or {}).get("id")
    return str(value) if value else None


def caller_turn(body: ChatBody) -> tuple[str, list[Message]]:
    """The caller's words (the last user message) and the conversation before them."""
    for index in range(len(body.messages) - 1, -1, -1):
        message = body.messages[index]
        if message.role == "user":
            text = text_of(message).strip()
            if not text:
                break
            earlier = [
                Message("user" if m.role == "user" else "assistant", text_of(m))
                for m in body.messages[:index]
                if m.role in ("user", "assistant") and text_of(m)
            ]
            return text, earlier
    raise ChatError("the conversation has no user message with text to answer")


class Chunks:
    """`chat.completion.chunk` objects of one streamed answer, as SSE lines."""

    def __init__(self, model: str) -> None:
        self.id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        self.created = int(time.time())
        self.model = model

    def _event(self, delta: dict[str, str], finish: str | None) -> str:
        body = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
        return f"data: {json.dumps(body, separators=(',', ':'))}\n\n"

    def first(self) -> str:
        return self._event({"role": "assistant", "content": ""}, None)

    def piece(self, text: str) -> str:
        return self._event({"content": text}, None)

    def last(self) -> str:
        return self._event({}, "stop") + "data: [DONE]\n\n"

    def completion(self, text: str) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
        }
