"""Any OpenAI-compatible endpoint through the official `openai` async client."""

from __future__ import annotations

import itertools
from collections.abc import AsyncGenerator, Sequence
from typing import Any

import openai

from voice_agent.errors import LLMTimeout, LLMUnavailable
from voice_agent.types import Message

# Every call's request to the model keeps its connection for the next: the client's default
# keeps 100 alive, so with more answers streaming at once each request past them would pay a new
# connection (a TLS handshake to a hosted model) and close it again.
KEPT_CONNECTIONS = 1000
# Before each request the HTTP client checks every idle connection of its pool (a `poll` each),
# work that grows with the answers streaming at once; the requests take turns between this many
# clients, each with its own pool, so that a request checks a share of the connections.
POOLS = 8

# Local OpenAI-compatible servers (vLLM, llama.cpp, Ollama) accept any key; the client needs one.
PLACEHOLDER_KEY = "not-needed"


def delta_of(chunk: object) -> tuple[str, bool]:
    """A streamed chunk's text and whether it ends the answer; `ValueError` for a chunk that is
    not shaped like one of a chat completion."""
    if not isinstance(chunk, dict):
        raise ValueError(f"a chunk that is not an object: {chunk!r:.80}")
    if chunk.get("object") == "error":  # vLLM's way (the client raises on an "error" key)
        raise ValueError(f"the server sent an error: {chunk.get('message')!r:.200}")
    choices = chunk.get("choices")
    if not choices:
        return "", False  # a usage-only or keep-alive chunk
    if not isinstance(choices, list) or not isinstance(choices[0], dict):
        raise ValueError(f"a chunk's choices are not objects: {chunk!r:.80}")
    choice = choices[0]
    delta = choice.get("delta") or {}
    text = (delta.get("content") or "") if isinstance(delta, dict) else None
    if not isinstance(text, str):
        raise ValueError(f"a chunk's delta holds no text: {chunk!r:.80}")
    return text, choice.get("finish_reason") is not None


class OpenAILLM:
    name = "openai"

    def __init__(
        self,
        *,
        model: str,
        base_url: str | None,
        api_key: str | None,
        timeout_s: float,
        temperature: float = 0.3,
    ) -> None:
        self.model = model
        self._timeout_s = timeout_s
        self._temperature = temperature
        # Budgets are enforced per token by the stream guard; the client's own timeout only
        # bounds connection set-up, and retries are left to the circuit breaker.
        limits = type(openai.DEFAULT_CONNECTION_LIMITS)(  # httpx's in 1.x, httpx2's in 3.x
            max_connections=KEPT_CONNECTIONS // POOLS,
            max_keepalive_connections=KEPT_CONNECTIONS // POOLS,
        )
        self._clients = [
            openai.AsyncOpenAI(
                base_url=base_url,
                api_key=api_key or PLACEHOLDER_KEY,
                timeout=timeout_s,
                max_retries=0,
                http_client=openai.DefaultAsyncHttpxClient(limits=limits),
            )
            for _ in range(POOLS)
        ]
        self._turn = itertools.cycle(self._clients)

    def retarget(self, base_url: str) -> None:
        """Send the next requests to `base_url` (a restarted local model listens on a new port)."""
        for client in self._clients:
            client.base_url = base_url

    async def close(self) -> None:
        for client in self._clients:
            await client.close()

    async def stream(
        self, messages: Sequence[Message], max_tokens: int
    ) -> AsyncGenerator[str, None]:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [m.as_dict() for m in messages],
            "max_tokens": max_tokens,
            "temperature": self._temperature,
            "stream": True,
        }
        try:
            # The client's generic POST, not `chat.completions.create`: the body is already
            # plain JSON, and `create` walks every message of the prompt against its typed
            # schema first (1.8 ms a request for a prompt of nine messages). The chunks come
            # back as the JSON the server sent (`object`), not as typed models: building one
            # per token was a tenth of the event loop's time at 200 calls. Retries, auth,
            # errors and the server-sent events are the client's as before.
            response = await next(self._turn).post(
                "/chat/completions",
                body=body,
                cast_to=object,
                stream=True,
                stream_cls=openai.AsyncStream[object],
            )
        except openai.APITimeoutError as exc:
            raise LLMTimeout("connect", self._timeout_s) from exc
        except openai.OpenAIError as exc:
            raise LLMUnavailable(f"openai request failed: {exc}") from exc
        finished = False
        try:
            async for chunk in response:
                text, done = delta_of(chunk)
                if text:
                    yield text
                finished = finished or done
        except openai.OpenAIError as exc:  # a broken connection too (APIConnectionError)
            raise LLMUnavailable(f"openai stream failed: {exc!r}") from exc
        except ValueError as exc:  # an event that is not JSON: the backend is broken
            raise LLMUnavailable(f"openai stream garbled: {exc}") from exc
        finally:
            await response.close()
        if not finished:
            # The server closed the stream without saying the answer was over: what came is
            # a cut answer, never to be served or cached as a whole one.
            raise LLMUnavailable("openai stream ended before the answer was finished")
