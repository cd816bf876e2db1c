"""Errors raised by the service, one shallow tree under `VoiceAgentError`.

    VoiceAgentError
    ├── ConfigError        a setting or data file is wrong; fix it and restart (no retry helps)
    ├── ProtocolError      a client frame is malformed; the call goes on (no retry helps)
    ├── KnowledgeBaseError documents could not be read or indexed (no retry helps)
    ├── RequestError       an HTTP request the service cannot act on; the client gets a 4xx
    │   ├── ExplainError   no such flow or state to explain in
    │   ├── ChatError      a chat-completions body with nothing to answer
    │   └── FlagError      a flags change that would leave them inconsistent; nothing changed
    ├── CacheBackendError  the shared cache's Redis failed; the local cache goes on (retry may help)
    ├── EncoderSlow        no embedding within the turn's budget; the turn goes on without it
    ├── FleetUnavailable   the fleet's shared state (Redis) cannot take a change (retry may help)
    ├── SpeechUnavailable  a recognition or speech endpoint failed; the utterance or sentence is
    │                      lost, the call goes on (retry may help)
    └── LLMError           the language model failed to answer
        ├── LLMTimeout     no first token, a stall, or the hard limit ran out (retry may help)
        └── LLMUnavailable the backend refused, errored or is circuit-broken (retry may help later)

Third-party errors (openai, llama.cpp, redis) are translated at the boundary with `raise ... from`.
"""

from __future__ import annotations


class VoiceAgentError(Exception):
    retryable: bool = False


class ConfigError(VoiceAgentError):
    pass


class ProtocolError(VoiceAgentError):
    """A client frame that the service cannot act on; `code` goes into the error frame."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class KnowledgeBaseError(VoiceAgentError):
    pass


class RequestError(VoiceAgentError):
    pass


class ExplainError(RequestError):
    pass


class ChatError(RequestError):
    pass


class FlagError(RequestError):
    pass


class CacheBackendError(VoiceAgentError):
    retryable = True


class FleetUnavailable(VoiceAgentError):
    """A change meant for every process (the flags) that Redis could not take: nothing changed."""

    retryable = True


class EncoderSlow(VoiceAgentError):
    """The encoder gave no embedding within the turn's budget: the tiers that need one pass,
    and retrieval goes on with words alone."""

    retryable = True


class SpeechUnavailable(VoiceAgentError):
    retryable = True


class LLMError(VoiceAgentError):
    retryable = True


class LLMTimeout(LLMError):
    def __init__(self, phase: str, limit_s: float) -> None:
        super().__init__(f"LLM {phase} exceeded {limit_s:.3f}s")
        self.phase = phase
        self.limit_s = limit_s


class LLMUnavailable(LLMError):
    pass
