"""Access: with keys configured, every endpoint but /health, /ready (and /metrics, by default)
refuses a request with no key or a wrong one, the admin endpoints refuse a user key, state
changes take JSON only, a browser socket from a foreign Origin is refused, the audit log names
the admin key, and an open service will not listen beyond loopback."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from voice_agent.cli import main
from voice_agent.errors import ConfigError
from voice_agent.server.access import access_policy, check_exposure, parse_keys
from voice_agent.server.app import create_app
from voice_agent.server.service import Service
from voice_agent.settings import load_settings

from ..fakes import FakeLLM

pytestmark = pytest.mark.model

USER = "user-secret-0123456789"
ADMIN = "admin-secret-0123456789"
KEYS = {"VOICE_AGENT_API_KEYS": f"frontend:{USER}", "VOICE_AGENT_ADMIN_KEYS": f"oncall:{ADMIN}"}
CASES = {"none": None, "wrong": "not-a-key-0123456789", "user": USER, "admin": ADMIN}

# endpoint -> status for each case: no key, wrong key, user key, admin key
HTTP = [
    ("GET", "/health", None, (200, 200, 200, 200)),
    ("GET", "/ready", None, (200, 200, 200, 200)),
    ("GET", "/metrics", None, (200, 200, 200, 200)),
    ("GET", "/healthz", None, (401, 401, 200, 200)),
    ("POST", "/v1/explain", {"text": "hello"}, (401, 401, 200, 200)),
    ("POST", "/v1/quality/score", {"question": "q?", "answer": "a."}, (401, 401, 200, 200)),
    ("POST", "/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}]},
     (401, 401, 200, 200)),
    ("POST", "/twilio/voice", None, (401, 401, 200, 200)),
    ("GET", "/v1/admin/flags", None, (401, 401, 403, 200)),
    ("PATCH", "/v1/admin/flags", {"mode": "shadow"}, (401, 401, 403, 200)),
    ("POST", "/v1/admin/cache/flush", {}, (401, 401, 403, 200)),
    ("POST", "/v1/ingest", {"documents": [{"id": "x", "text": "We open at 9."}]},
     (401, 401, 403, 200)),
]  # fmt: skip
SOCKETS = ["/v1/calls", "/twilio/relay", "/retell/llm/access-test", "/v1/telemetry"]


async def statuses(url: str) -> dict[tuple[str, str], tuple[int, ...]]:
    seen = {}
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        for method, path, body, _ in HTTP:
            codes = []
            for secret in CASES.values():
                headers = {} if secret is None else {"Authorization": f"Bearer {secret}"}
                response = await http.request(method, path, json=body, headers=headers)
                codes.append(response.status_code)
            seen[(method, path)] = tuple(codes)
    return seen


async def opens(url: str, path: str, secret: str | None, **headers: str) -> bool:
    query = "" if secret is None else f"?token={secret}"
    try:
        async with websockets.connect(url + path + query, additional_headers=headers):
            return True  # the upgrade was accepted
    except websockets.InvalidStatus as exc:
        assert exc.response.status_code == 403
        return False


async def test_every_endpoint_and_socket_asks_for_the_right_key(
    make_service: Callable[..., Service], running: Any, tmp_path: Path
) -> None:
    audit = tmp_path / "audit.jsonl"
    service = make_service(FakeLLM(), VOICE_AGENT_AUDIT_LOG=str(audit), **KEYS)
    async with running(service) as url:
        seen = await statuses(url)
        ws = url.replace("http://", "ws://")
        sockets = {
            path: [await opens(ws, path, secret) for secret in CASES.values()] for path in SOCKETS
        }
        by_header = await opens(ws, "/v1/calls", None, **{"X-API-Key": USER})
        foreign = await opens(ws, "/v1/calls", USER, Origin="https://evil.example")
        own_host = ws.removeprefix("ws://")
        same_site = await opens(ws, "/v1/calls", USER, Origin=f"http://{own_host}")
        async with httpx.AsyncClient(base_url=url) as http:
            admin = {"Authorization": f"Bearer {ADMIN}"}
            plain = await http.post("/v1/admin/cache/flush", content=b"", headers=admin)
            form = await http.post(
                "/v1/admin/cache/flush",
                content=b"x=1",
                headers={**admin, "Content-Type": "text/plain"},
            )
            twiml = (await http.post(f"/twilio/voice?token={USER}")).text
    assert seen == {(m, p): expected for m, p, _, expected in HTTP}
    assert sockets == {path: [False, False, True, True] for path in SOCKETS}
    assert by_header and same_site and not foreign
    assert plain.status_code == 415 and form.status_code == 415
    assert f"/twilio/relay?token={USER}" in twiml
    changes = [json.loads(line) for line in audit.read_text().splitlines()]
    assert [c["who"] for c in changes] == ["oncall"]  # the key's name, never its secret
    assert ADMIN not in audit.read_text()


def test_keys_are_checked_at_start_up_and_an_open_service_stays_on_loopback(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(ConfigError, match="VOICE_AGENT_API_KEYS: entry 1 is not name:secret"):
        parse_keys("just-a-secret-without-a-name", "VOICE_AGENT_API_KEYS", admin=False)
    with pytest.raises(ConfigError, match="shorter than 16") as short:
        parse_keys("ops:short", "VOICE_AGENT_ADMIN_KEYS", admin=True)
    assert "short'" not in str(short.value).replace("'ops'", "")  # the secret is never shown
    exposed = load_settings(VOICE_AGENT_HOST="0.0.0.0")
    with pytest.raises(ConfigError, match="not a loopback address"):
        check_exposure(exposed, access_policy(exposed))
    for fine in (
        load_settings(VOICE_AGENT_HOST="0.0.0.0", VOICE_AGENT_API_KEYS=f"fe:{USER}"),
        load_settings(VOICE_AGENT_HOST="0.0.0.0", VOICE_AGENT_ALLOW_OPEN=True),
        load_settings(VOICE_AGENT_HOST="127.0.0.1"),
    ):
        check_exposure(fine, access_policy(fine))
    # The command refuses before loading any model.
    assert main(["serve", "--host", "0.0.0.0", "--port", "0"]) == 2
    assert "not a loopback address" in capsys.readouterr().err


def test_keys_sent_as_token_never_reach_uvicorns_log_lines() -> None:
    from voice_agent.server.workers import uvicorn_config

    uvicorn_config(create_app(load_settings()), load_settings())
    secret = "abcdefghijklmnop1234"
    lines: list[str] = []
    seen = logging.Handler()
    seen.emit = lambda record: lines.append(record.getMessage())  # type: ignore[method-assign]
    loggers = [logging.getLogger(name) for name in ("uvicorn.error", "uvicorn.access")]
    for logger in loggers:  # uvicorn's loggers do not propagate: listen on them directly
        logger.addHandler(seen)
    try:
        loggers[0].info(
            '%s - "WebSocket %s" [accepted]', "127.0.0.1:5000", f"/v1/calls?flow=qa&token={secret}"
        )
        loggers[1].info(
            '%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", "GET", f"/x?token={secret}&a=1", "1.1", 200
        )
    finally:
        for logger in loggers:
            logger.removeHandler(seen)
    assert len(lines) == 2 and all(secret not in line for line in lines)
    assert "/v1/calls?flow=qa&token=[redacted]" in lines[0] and "token=[redacted]&a=1" in lines[1]
