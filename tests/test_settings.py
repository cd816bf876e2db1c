from __future__ import annotations

import pytest

from voice_agent.errors import ConfigError
from voice_agent.settings import DEMO_KB_PATH, LLMBackend, Mode, load_settings


def test_defaults_need_no_environment_and_point_at_the_demo_knowledge_base(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("LATENCY_OPTIMIZATION_MODE", "VOICE_AGENT_LLM_BACKEND", "VOICE_AGENT_KB_PATH"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings()
    assert settings.mode is Mode.ENABLED
    assert settings.llm_backend is LLMBackend.LOCAL
    assert settings.kb_path == DEMO_KB_PATH
    assert (settings.host, settings.port) == ("127.0.0.1", 8000)
    assert settings.response_cache_ttl_seconds == 3600
    assert (settings.quality_baseline_score, settings.quality_alert_threshold) == (75, 5)
    assert settings.redis_url is None


def test_settings_are_read_from_their_environment_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LATENCY_OPTIMIZATION_MODE", "shadow")
    monkeypatch.setenv("VOICE_AGENT_PORT", "9001")
    monkeypatch.setenv("VOICE_AGENT_LLM_BACKEND", "openai")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    settings = load_settings()
    assert settings.mode is Mode.SHADOW
    assert settings.port == 9001
    assert settings.llm_backend is LLMBackend.OPENAI
    assert settings.openai_base_url == "http://127.0.0.1:9/v1"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("LATENCY_OPTIMIZATION_MODE", "fast"),
        ("VOICE_AGENT_PORT", "70000"),
        ("VOICE_AGENT_LLM_BACKEND", "gpt"),
        ("VOICE_AGENT_LLM_TIMEOUT_S", "-1"),
        ("RESPONSE_CACHE_TTL_SECONDS", "soon"),
        ("QUALITY_BASELINE_SCORE", "120"),
    ],
)
def test_a_bad_value_fails_with_a_message_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=name):
        load_settings()


def test_a_missing_knowledge_base_path_is_named(tmp_path: object) -> None:
    with pytest.raises(ConfigError, match="VOICE_AGENT_KB_PATH"):
        load_settings(VOICE_AGENT_KB_PATH="/nonexistent/kb")


def test_first_token_budget_must_be_below_the_hard_limit() -> None:
    with pytest.raises(ConfigError, match="VOICE_AGENT_FIRST_TOKEN_BUDGET_S"):
        load_settings(VOICE_AGENT_FIRST_TOKEN_BUDGET_S=3, VOICE_AGENT_LLM_TIMEOUT_S=2)
