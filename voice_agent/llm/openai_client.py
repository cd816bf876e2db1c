"""Any OpenAI-compatible endpoint through the official `openai` async client."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from typing import Any

import openai
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from voice_agent.errors import LLMTimeout, LLMUnavailable
from voice_agent.types import Message

# Every call's request to the model keeps its connection for the next: the client's default
# keeps 100 alive, so with more answers streaming at once each request past them would pay a new
# connection (a TLS handshake to a hosted model) and close it again.
KEPT_CONNECTIONS = 1000

# Local OpenAI-compatible servers (vLLM, llama.cpp, Ollama) accept any key; the client needs one.
PLACEHOLDER_KEY = "not-needed"


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
        self._client = openai.AsyncOpenAI(
            base_url=base_url,
            api_key=api_key or PLACEHOLDER_KEY,
            timeout=timeout_s,
            max_retries=0,
            http_client=openai.DefaultAsyncHttpxClient(
                # The client's own HTTP library's type (httpx in 1.x, httpx2 in 3.x).
                limits=type(openai.DEFAULT_CONNECTION_LIMITS)(
                    max_connections=KEPT_CONNECTIONS, max_keepalive_connections=KEPT_CONNECTIONS
                )
            ),
        )

    def retarget(self, base_url: str) -> None:
        """Send the next requests to `base_url` (a restarted local model listens on a new port)."""
        self._client.base_url = base_url

    async def close(self) -> None:
        await self._client.close()

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
            # schema first (1.8 ms a request for a prompt of nine messages: at hundreds of
            # calls, more than the rest of the request). Retries, auth, errors and the
            # streamed chunks' parsing are the client's as before.
            response = await self._client.post(
                "/chat/completions",
                body=body,
                cast_to=ChatCompletion,
                stream=True,
                stream_cls=openai.AsyncStream[ChatCompletionChunk],
            )
        except openai.APITimeoutError as exc:
            raise LLMTimeout("connect", self._timeout_s) from exc
        except openai.OpenAIError as exc:
            raise LLMUnavailable(f"openai request failed: {exc}") from exc
        finished = False
        try:
            async for chunk in response:
                if not chunk.choices:
                    continue
                choice = chunk.choices[0]
                text = choice.delta.content
                if text:
                    yield text
                finished = finished or choice.finish_reason is not None
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
