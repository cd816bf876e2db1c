"""A GGUF model run by llama.cpp in this process: what the model process serves, and what
benchmarks time when they measure the model on its own."""

from __future__ import annotations

import threading
from collections.abc import Generator, Sequence
from pathlib import Path
from typing import Any

from voice_agent.errors import ConfigError
from voice_agent.types import Message

GGUF_MAGIC = b"GGUF"


def check_gguf(path: Path, setting: str = "VOICE_AGENT_LLM_MODEL") -> None:
    """Refuse a path that is not a GGUF file before any process is started for it."""
    if not path.is_file():
        raise ConfigError(f"{setting}: no GGUF file at {path}")
    with path.open("rb") as file:
        head = file.read(4)
    if head != GGUF_MAGIC:
        raise ConfigError(
            f"{setting}: {path} is not a GGUF model file (it starts with {head!r}, "
            f"a GGUF file with {GGUF_MAGIC!r})"
        )


class LlamaModel:
    """One llama.cpp context. Generations run one at a time: a context must never decode on
    two threads at once (llama.cpp aborts the process). Consecutive prompts that share a prefix
    (system prompt, state task) reuse the tokens llama.cpp has already evaluated."""

    def __init__(
        self,
        model_path: Path,
        *,
        n_threads: int,
        n_ctx: int,
        temperature: float = 0.2,
        repeat_penalty: float = 1.2,
    ) -> None:
        from llama_cpp import Llama

        check_gguf(model_path)
        self.model_path = model_path
        self._llm = Llama(
            model_path=str(model_path),
            n_ctx=n_ctx,
            n_threads=n_threads,
            n_threads_batch=n_threads,
            n_batch=512,
            flash_attn=True,  # measured: about 12% faster prompt evaluation on CPU
            verbose=False,
        )
        self.temperature = temperature
        self._repeat_penalty = repeat_penalty
        self._busy = threading.Lock()

    def warm(self) -> str:
        """Evaluate a first prompt and decode a few tokens, so the first caller does not pay
        for lazy initialisation and a model that cannot decode is found at start-up (it raises,
        or takes the process down). Returns what it said, which may be only white space."""
        return "".join(self.generate([Message("user", "Hello")], max_tokens=4))

    def chunks(
        self, messages: Sequence[Message], max_tokens: int, temperature: float | None = None
    ) -> Generator[dict[str, Any], None, None]:
        """OpenAI-style chat completion chunks, streamed on the calling thread. Closing the
        generator stops the model at its next token."""
        payload: Any = [m.as_dict() for m in messages]
        with self._busy:
            stream: Any = self._llm.create_chat_completion(
                messages=payload,
                max_tokens=max_tokens,
                temperature=self.temperature if temperature is None else temperature,
                repeat_penalty=self._repeat_penalty,
                stream=True,
            )
            try:
                yield from stream
            finally:
                stream.close()

    def generate(self, messages: Sequence[Message], max_tokens: int) -> Generator[str, None, None]:
        """The answer's text pieces: the model's own speed, with nothing in between."""
        for chunk in self.chunks(messages, max_tokens):
            text = chunk["choices"][0]["delta"].get("content")
            if text:
                yield text
