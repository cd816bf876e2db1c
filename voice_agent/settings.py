"""Service settings, read once at start-up from the environment and passed in.

Every setting is named by the environment variable that sets it. Budgets carry their unit in
their name. A bad value stops start-up with a message naming the variable.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from quick_responses.pack import DEFAULT_PACK
from voice_agent.errors import ConfigError

DATA_PATH = Path(__file__).parent / "data"
DEMO_KB_PATH = DATA_PATH / "demo_kb"
BUNDLED_FLOWS_PATH = DATA_PATH / "flows"
BUNDLED_INTENTS_PATH = DATA_PATH / "intents"


class Mode(StrEnum):
    DISABLED = "disabled"
    SHADOW = "shadow"
    ENABLED = "enabled"


class LLMBackend(StrEnum):
    LOCAL = "local"
    OPENAI = "openai"
    EXTRACTIVE = "extractive"  # no model: the knowledge base's closest sentence (llm/extractive.py)


def _env(name: str, **kwargs: Any) -> Any:
    return Field(validation_alias=AliasChoices(name), **kwargs)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(frozen=True, extra="ignore", populate_by_name=False)

    host: str = _env("VOICE_AGENT_HOST", default="127.0.0.1")
    port: int = _env("VOICE_AGENT_PORT", default=8000, ge=0, le=65535)
    # Service processes on the one port (`serve --workers`); more than one needs Redis, which
    # is where they share the flags, the call limits and the cache.
    workers: int = _env("VOICE_AGENT_WORKERS", default=1, ge=1, le=64)
    # Set by `serve --workers` for its processes (or by hand under gunicorn): /metrics then sums
    # the metrics of every process on the machine, as prometheus_client's multiprocess mode does.
    prometheus_multiproc_dir: str = _env("PROMETHEUS_MULTIPROC_DIR", default="")
    mode: Mode = _env("LATENCY_OPTIMIZATION_MODE", default=Mode.ENABLED)
    rollout_percent: float = _env("OPTIMIZATION_ROLLOUT_PERCENT", default=100, ge=0, le=100)
    audit_log: Path | None = _env("VOICE_AGENT_AUDIT_LOG", default=Path("voice-agent-audit.jsonl"))

    llm_backend: LLMBackend = _env("VOICE_AGENT_LLM_BACKEND", default=LLMBackend.LOCAL)
    llm_model: str = _env("VOICE_AGENT_LLM_MODEL", default="")
    openai_base_url: str | None = _env("OPENAI_BASE_URL", default=None)
    openai_api_key: str | None = _env("OPENAI_API_KEY", default=None)
    llm_threads: int = _env("VOICE_AGENT_LLM_THREADS", default=2, ge=1, le=64)
    llm_context_tokens: int = _env("VOICE_AGENT_LLM_CONTEXT_TOKENS", default=2048, ge=512)
    llm_max_tokens: int = _env("VOICE_AGENT_LLM_MAX_TOKENS", default=80, ge=8, le=1024)
    answer_max_sentences: int = _env("VOICE_AGENT_ANSWER_MAX_SENTENCES", default=2, ge=1, le=20)
    # The local model's process (llm/supervisor.py).
    llm_start_timeout_s: float = _env("VOICE_AGENT_LLM_START_TIMEOUT_S", default=120.0, gt=0)
    llm_hang_timeout_s: float = _env("VOICE_AGENT_LLM_HANG_TIMEOUT_S", default=10.0, gt=0)
    llm_restart_backoff_s: float = _env("VOICE_AGENT_LLM_RESTART_BACKOFF_S", default=0.5, gt=0)
    llm_restart_backoff_max_s: float = _env(
        "VOICE_AGENT_LLM_RESTART_BACKOFF_MAX_S", default=30.0, gt=0
    )

    first_token_budget_s: float = _env("VOICE_AGENT_FIRST_TOKEN_BUDGET_S", default=0.8, gt=0)
    # A turn's wait for its embedding: past it intents match exactly only, the quick tier and
    # the cache pass, and retrieval is by words alone, so a slow encoder cannot hold the turn.
    embed_timeout_s: float = _env("VOICE_AGENT_EMBED_TIMEOUT_S", default=0.5, gt=0)
    llm_timeout_s: float = _env("VOICE_AGENT_LLM_TIMEOUT_S", default=3.0, gt=0)
    llm_stall_timeout_s: float = _env("VOICE_AGENT_LLM_STALL_TIMEOUT_S", default=1.0, gt=0)
    breaker_failures: int = _env("VOICE_AGENT_BREAKER_FAILURES", default=3, ge=1)
    breaker_cooldown_s: float = _env("VOICE_AGENT_BREAKER_COOLDOWN_S", default=15.0, gt=0)
    filler_text: str = _env(
        "VOICE_AGENT_FILLER_TEXT", default="One moment, let me check that.", min_length=1
    )
    fallback_text: str = _env(
        "VOICE_AGENT_FALLBACK_TEXT",
        default="Sorry, I can't look that up right now. Could you ask me again in a moment?",
        min_length=1,
    )

    kb_path: Path = _env("VOICE_AGENT_KB_PATH", default=DEMO_KB_PATH)
    business_name: str = _env("VOICE_AGENT_BUSINESS_NAME", default="Maple Street Pharmacy")
    retrieval_top_k: int = _env("VOICE_AGENT_RETRIEVAL_TOP_K", default=5, ge=1, le=50)
    prompt_passages: int = _env("VOICE_AGENT_PROMPT_PASSAGES", default=2, ge=1, le=50)
    encoder_precision: Literal["auto", "float32", "bfloat16"] = _env(
        "VOICE_AGENT_ENCODER_PRECISION", default="auto"
    )
    encoder_runtime: Literal["auto", "onnx", "onnx-int8", "torch"] = _env(
        "VOICE_AGENT_ENCODER_RUNTIME", default="auto"
    )
    # A low-rank update merged into the encoder (voice_agent/rag/adapter.py): "none" for the
    # bundled model as it ships (what the defaults were tuned on), "bundled" for the adapter
    # made by bench/tune_encoder.py, or the path of an adapter's .npz.
    encoder_adapter: str = _env("VOICE_AGENT_ENCODER_ADAPTER", default="none")
    # Where the encoder's ONNX export is kept; empty: $XDG_CACHE_HOME/voice-agent/encoders.
    encoder_cache_dir: str = _env("VOICE_AGENT_ENCODER_CACHE_DIR", default="")
    embedding_cache_size: int = _env("VOICE_AGENT_EMBEDDING_CACHE_SIZE", default=10_000, ge=0)
    encoder_threads: int = _env("VOICE_AGENT_ENCODER_THREADS", default=1, ge=1, le=64)
    history_turns: int = _env("VOICE_AGENT_HISTORY_TURNS", default=4, ge=0, le=50)
    flow_path: Path = _env("VOICE_AGENT_FLOW_PATH", default=BUNDLED_FLOWS_PATH)
    default_flow: str = _env("VOICE_AGENT_DEFAULT_FLOW", default="pharmacy", min_length=1)
    intents_path: Path = _env("VOICE_AGENT_INTENTS_PATH", default=BUNDLED_INTENTS_PATH)
    quick_pack: Path = _env("VOICE_AGENT_QUICK_PACK", default=DEFAULT_PACK)
    quick_responses_enabled: bool = _env("VOICE_AGENT_QUICK_RESPONSES", default=True)
    intent_threshold: float = _env("VOICE_AGENT_INTENT_THRESHOLD", default=0.72, gt=0, le=1)
    intent_margin: float = _env("VOICE_AGENT_INTENT_MARGIN", default=0.08, ge=0, le=1)

    response_cache_enabled: bool = _env("VOICE_AGENT_RESPONSE_CACHE", default=True)
    response_cache_ttl_seconds: float = _env("RESPONSE_CACHE_TTL_SECONDS", default=3600, gt=0)
    cache_max_entries: int = _env("VOICE_AGENT_CACHE_MAX_ENTRIES", default=100_000, ge=10)
    cache_threshold: float = _env("VOICE_AGENT_CACHE_THRESHOLD", default=0.88, gt=0, le=1)
    cache_agree_mass: float = _env("VOICE_AGENT_CACHE_AGREE_MASS", default=1.25, gt=0)
    cache_agree_gap: float = _env("VOICE_AGENT_CACHE_AGREE_GAP", default=0.2, ge=0, le=1)
    cache_warm_faq: bool = _env("VOICE_AGENT_CACHE_WARM_FAQ", default=True)
    cache_min_quality: float = _env("VOICE_AGENT_CACHE_MIN_QUALITY", default=60, ge=0, le=100)
    cache_warm_file: Path | None = _env("VOICE_AGENT_CACHE_WARM_FILE", default=None)
    language: str = _env("VOICE_AGENT_LANGUAGE", default="en", min_length=2)
    quality_baseline_score: float = _env("QUALITY_BASELINE_SCORE", default=75, ge=0, le=100)
    quality_alert_threshold: float = _env("QUALITY_ALERT_THRESHOLD", default=5, ge=0, le=100)
    quality_window_turns: int = _env("QUALITY_WINDOW_TURNS", default=50, ge=1)
    auto_rollback: bool = _env("VOICE_AGENT_AUTO_ROLLBACK", default=True)
    # The latency SLO (docs/runbooks/latency-alert.md): an alert when a source's first word is
    # over LATENCY_ALERT_MS for LATENCY_ALERT_TURNS turns in a row; a rollback to shadow when
    # enabled-mode turns are over LATENCY_ROLLBACK_MS for LATENCY_ROLLBACK_TURNS in a row.
    latency_alert_ms: float = _env("LATENCY_ALERT_MS", default=2500, gt=0)
    latency_alert_turns: int = _env("LATENCY_ALERT_TURNS", default=5, ge=1)
    latency_rollback_ms: float = _env("LATENCY_ROLLBACK_MS", default=3000, gt=0)
    latency_rollback_turns: int = _env("LATENCY_ROLLBACK_TURNS", default=10, ge=1)
    telemetry_file: Path | None = _env("VOICE_AGENT_TELEMETRY_FILE", default=None)
    # Questions and answers in logs, the telemetry file and the live stream (always redacted
    # of the caller's card, phone, e-mail and long numbers); off: left out entirely.
    telemetry_transcripts: bool = _env("VOICE_AGENT_TELEMETRY_TRANSCRIPTS", default=True)
    twilio_auth_token: str | None = _env("TWILIO_AUTH_TOKEN", default=None)
    # Access (docs/security.md): `name:secret` pairs; with none, the service is open and
    # `serve` keeps it on loopback unless VOICE_AGENT_ALLOW_OPEN says otherwise.
    api_keys: str = _env("VOICE_AGENT_API_KEYS", default="")
    admin_keys: str = _env("VOICE_AGENT_ADMIN_KEYS", default="")
    allow_open: bool = _env("VOICE_AGENT_ALLOW_OPEN", default=False)
    metrics_open: bool = _env("VOICE_AGENT_METRICS_OPEN", default=True)
    # Browser origins allowed to open sockets, besides the service's own host (comma-separated).
    allowed_origins: str = _env("VOICE_AGENT_ALLOWED_ORIGINS", default="")
    # Retell: how long to wait for the call's details (its metadata reaches the flow) before
    # greeting, and how long to leave the socket to Retell after the call's final response.
    retell_details_wait_s: float = _env("VOICE_AGENT_RETELL_DETAILS_WAIT_S", default=0.5, ge=0)
    retell_end_grace_s: float = _env("VOICE_AGENT_RETELL_END_GRACE_S", default=30, ge=0)
    # Retell: how long a call whose socket dropped is kept for Retell to reconnect to.
    retell_reconnect_window_s: float = _env(
        "VOICE_AGENT_RETELL_RECONNECT_WINDOW_S", default=30, ge=0
    )
    # CloudWatch Embedded Metric Format lines: "stdout", a file's path, or empty for none.
    cloudwatch_emf: str = _env("VOICE_AGENT_CLOUDWATCH_EMF", default="")
    cloudwatch_namespace: str = _env("VOICE_AGENT_CLOUDWATCH_NAMESPACE", default="VoiceAgent")
    # OpenTelemetry: one trace per turn (a span per stage) sent with OTLP over HTTP to this
    # collector (for example http://otel-collector:4318); empty, no tracing at all.
    otlp_endpoint: str = _env("VOICE_AGENT_OTLP_ENDPOINT", default="")
    otel_service_name: str = _env("VOICE_AGENT_OTEL_SERVICE_NAME", default="voice-agent")
    dd_agent_host: str | None = _env("DD_AGENT_HOST", default=None)
    dd_dogstatsd_port: int = _env("DD_DOGSTATSD_PORT", default=8125, ge=1, le=65535)
    redis_url: str | None = _env("VOICE_AGENT_REDIS_URL", default=None)
    redis_timeout_s: float = _env("VOICE_AGENT_REDIS_TIMEOUT_S", default=0.5, gt=0)

    max_frame_bytes: int = _env("VOICE_AGENT_MAX_FRAME_BYTES", default=65536, ge=256)
    # Calls on sockets at once, in this process and per API key: past it a new call is closed
    # with 1013 and /ready says 503, so the balancer sends calls elsewhere (0: no limit).
    max_calls: int = _env("VOICE_AGENT_MAX_CALLS", default=500, ge=0)
    # Calls the dashboard keeps (their last turns), the least recently heard dropped first:
    # above the calls a process takes at once, so a call on the line is never dropped.
    dashboard_calls: int = _env("VOICE_AGENT_DASHBOARD_CALLS", default=1500, ge=10)
    max_calls_per_key: int = _env("VOICE_AGENT_MAX_CALLS_PER_KEY", default=0, ge=0)
    # An HTTP request's body (chat completions, explain, ingest): 413 past it.
    max_body_bytes: int = _env("VOICE_AGENT_MAX_BODY_BYTES", default=1_048_576, ge=1024)
    max_utterance_chars: int = _env("VOICE_AGENT_MAX_UTTERANCE_CHARS", default=2000, ge=16)
    # One call's bounds (0: none). Turns past the rate are refused with an error frame (429
    # on chat); a call past its duration hears the time-limit line and ends; a socket that
    # sends nothing for the idle timeout is ended; a frame the client does not read within
    # the send timeout closes its socket (the client stopped reading).
    max_turns_per_minute: int = _env("VOICE_AGENT_MAX_TURNS_PER_MINUTE", default=40, ge=0)
    max_call_duration_s: float = _env("VOICE_AGENT_MAX_CALL_DURATION_S", default=3600, ge=0)
    idle_timeout_s: float = _env("VOICE_AGENT_IDLE_TIMEOUT_S", default=300, ge=0)
    send_timeout_s: float = _env("VOICE_AGENT_SEND_TIMEOUT_S", default=5, gt=0)
    time_limit_goodbye: str = _env(
        "VOICE_AGENT_TIME_LIMIT_GOODBYE",
        default="We've reached the time limit for this call. Please call back if you need "
        "anything else. Goodbye.",
        min_length=1,
    )
    cancel_wait_s: float = _env("VOICE_AGENT_CANCEL_WAIT_S", default=0.5, gt=0)
    # SIGTERM: how long calls may go on (turns finish) before they hear the goodbye and close.
    drain_timeout_s: float = _env("VOICE_AGENT_DRAIN_TIMEOUT_S", default=30, ge=0)
    drain_goodbye: str = _env(
        "VOICE_AGENT_DRAIN_GOODBYE",
        default="I'm sorry, I have to end the call now. Please call back in a moment. Goodbye.",
    )
    # Audio calls (/twilio/media, docs/audio.md): "offline" hears with Whisper tiny.en and
    # speaks with a Piper voice, both bundled; "openai" uses an OpenAI-compatible endpoint's
    # transcription and speech (OPENAI_BASE_URL, OPENAI_API_KEY); "off" refuses audio calls.
    speech: Literal["offline", "openai", "off"] = _env("VOICE_AGENT_SPEECH", default="offline")
    speech_vad: Literal["webrtc", "silero"] = _env("VOICE_AGENT_SPEECH_VAD", default="webrtc")
    vad_aggressiveness: int = _env("VOICE_AGENT_VAD_AGGRESSIVENESS", default=2, ge=0, le=3)
    # Whisper's input window: the utterance rounded up to this, never under it (speech/whisper.py).
    recognizer_window_s: float = _env("VOICE_AGENT_RECOGNIZER_WINDOW_S", default=10.0, ge=1, le=30)
    recognizer_threads: int = _env("VOICE_AGENT_RECOGNIZER_THREADS", default=2, ge=1, le=64)
    # Turn taking (speech/turn_taking.py): speech needed to start an utterance (more while the
    # agent talks: a barge-in), silence before recognizing early, and before ending the turn
    # whatever the words.
    speech_start_ms: int = _env("VOICE_AGENT_SPEECH_START_MS", default=60, ge=20, le=1000)
    barge_in_speech_ms: int = _env("VOICE_AGENT_BARGE_IN_SPEECH_MS", default=200, ge=20, le=2000)
    early_silence_ms: int = _env("VOICE_AGENT_EARLY_SILENCE_MS", default=160, ge=20, le=2000)
    commit_silence_ms: int = _env("VOICE_AGENT_COMMIT_SILENCE_MS", default=700, ge=40, le=5000)
    echo_ratio: float = _env("VOICE_AGENT_ECHO_RATIO", default=0.25, ge=0, le=1)
    # End a turn at the first short pause when its words sound finished; off: silence only.
    end_on_words: bool = _env("VOICE_AGENT_END_ON_WORDS", default=True)
    phrasebook_max_mb: int = _env("VOICE_AGENT_PHRASEBOOK_MAX_MB", default=64, ge=1)
    # Where audio made ahead is kept across restarts (empty: not kept).
    phrasebook_dir: Path | None = _env(
        "VOICE_AGENT_PHRASEBOOK_DIR", default=Path.home() / ".cache" / "voice-agent" / "phrasebook"
    )
    stt_model: str = _env("VOICE_AGENT_STT_MODEL", default="whisper-1")
    tts_model: str = _env("VOICE_AGENT_TTS_MODEL", default="tts-1")
    tts_voice: str = _env("VOICE_AGENT_TTS_VOICE", default="alloy")
    # Embed and retrieve on partial transcripts ahead of the final (enabled mode only).
    speculate_partials: bool = _env("VOICE_AGENT_SPECULATE_PARTIALS", default=True)
    log_level: str = _env("VOICE_AGENT_LOG_LEVEL", default="INFO")

    @field_validator(
        "audit_log", "cache_warm_file", "telemetry_file", "phrasebook_dir", mode="before"
    )
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        # An empty variable means "none", not the current directory.
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _check(self) -> Settings:
        if not self.kb_path.exists():
            raise ValueError(f"VOICE_AGENT_KB_PATH: {self.kb_path} does not exist")
        for name, path in (
            ("VOICE_AGENT_FLOW_PATH", self.flow_path),
            ("VOICE_AGENT_INTENTS_PATH", self.intents_path),
            ("VOICE_AGENT_QUICK_PACK", self.quick_pack),
        ):
            if not path.exists():
                raise ValueError(f"{name}: {path} does not exist")
        if self.first_token_budget_s >= self.llm_timeout_s:
            raise ValueError(
                "VOICE_AGENT_FIRST_TOKEN_BUDGET_S must be below VOICE_AGENT_LLM_TIMEOUT_S "
                f"({self.first_token_budget_s} >= {self.llm_timeout_s})"
            )
        if self.early_silence_ms >= self.commit_silence_ms:
            raise ValueError(
                "VOICE_AGENT_EARLY_SILENCE_MS must be below VOICE_AGENT_COMMIT_SILENCE_MS"
            )
        if self.prompt_passages > self.retrieval_top_k:
            raise ValueError(
                "VOICE_AGENT_PROMPT_PASSAGES must not exceed VOICE_AGENT_RETRIEVAL_TOP_K"
            )
        return self


def load_settings(**overrides: Any) -> Settings:
    """Read the environment once; `overrides` (keyed by variable name) win over it."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            where = ".".join(str(part) for part in err["loc"]) or "settings"
            value = err.get("input")
            shown = "" if isinstance(value, dict) else f" (got {value!r})"
            problems.append(f"{where}: {err['msg']}{shown}")
        raise ConfigError("invalid settings: " + "; ".join(problems)) from exc
