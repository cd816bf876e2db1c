"""Who may use the service: API keys on every endpoint but /health, /ready and the dashboard's
page and files (its data is behind the keys; /metrics is open by a setting), admin keys on the
endpoints that change it (flags, cache flush, ingest), JSON-only bodies where state changes,
and the Origin of browser WebSockets.

A key is sent as `Authorization: Bearer <secret>`, `X-API-Key: <secret>` (`X-Vapi-Secret` too,
Vapi's own header), or a `token` query parameter for frontends that cannot set headers (a
browser's WebSocket, Retell's socket URL, Twilio's TwiML URL). Secrets are compared in constant
time and never logged (uvicorn's lines have `token=` values replaced); what the logs and the
audit log show is the key's name. With no keys configured the service is open, which
`voice-agent serve` allows only on a loopback address unless told otherwise."""

from __future__ import annotations

import hmac
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from starlette.datastructures import Headers
from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from voice_agent.errors import ConfigError
from voice_agent.settings import Settings

log = logging.getLogger(__name__)

OPEN_PATHS = frozenset({"/health", "/ready", "/dashboard", "/dashboard/access"})
OPEN_PREFIXES = ("/dashboard/files/",)  # the page's scripts and styles: no data in them
ADMIN_PREFIXES = ("/v1/admin/", "/v1/ingest")
KEY_HEADERS = ("x-api-key", "x-vapi-secret")
MIN_SECRET_CHARS = 16
LOCAL = "local"  # the actor when no keys are configured (loopback only)


@dataclass(frozen=True, slots=True)
class ApiKey:
    name: str
    secret: str
    admin: bool


def parse_keys(value: str, setting: str, admin: bool) -> list[ApiKey]:
    """`name:secret` pairs, comma-separated; a malformed or short one stops start-up with the
    setting named (never the secret)."""
    keys = []
    for number, pair in enumerate(p.strip() for p in value.split(",") if p.strip()):
        name, _, secret = pair.partition(":")
        name, secret = name.strip(), secret.strip()
        if not name or not secret:
            raise ConfigError(f"{setting}: entry {number + 1} is not name:secret")
        if len(secret) < MIN_SECRET_CHARS:
            raise ConfigError(
                f"{setting}: the secret of {name!r} is shorter than {MIN_SECRET_CHARS} characters"
            )
        keys.append(ApiKey(name, secret, admin))
    return keys


@dataclass(frozen=True, slots=True)
class AccessPolicy:
    keys: tuple[ApiKey, ...] = ()
    metrics_open: bool = True
    origins: tuple[str, ...] = ()  # browser origins allowed besides the service's own
    twilio_signed: bool = False  # Twilio's paths are guarded by its signature instead of keys

    @property
    def enabled(self) -> bool:
        return bool(self.keys)

    def key_for(self, secret: str) -> ApiKey | None:
        """The key with this secret; every key is compared, so timing tells nothing."""
        found = None
        for key in self.keys:
            if hmac.compare_digest(key.secret.encode(), secret.encode()):
                found = key
        return found


def access_policy(settings: Settings) -> AccessPolicy:
    keys = parse_keys(settings.api_keys, "VOICE_AGENT_API_KEYS", admin=False)
    keys += parse_keys(settings.admin_keys, "VOICE_AGENT_ADMIN_KEYS", admin=True)
    names = [k.name for k in keys]
    if len(set(names)) != len(names):
        raise ConfigError("VOICE_AGENT_API_KEYS, VOICE_AGENT_ADMIN_KEYS: a key name is used twice")
    origins = tuple(o.strip() for o in settings.allowed_origins.split(",") if o.strip())
    return AccessPolicy(
        tuple(keys), settings.metrics_open, origins, bool(settings.twilio_auth_token)
    )


def loopback(host: str) -> bool:
    return host in ("localhost", "::1") or host.startswith("127.")


def check_exposure(settings: Settings, policy: AccessPolicy) -> None:
    """An open service (no keys) listens on loopback only, unless told to listen open."""
    if policy.enabled or loopback(settings.host) or settings.allow_open:
        return
    raise ConfigError(
        f"VOICE_AGENT_HOST={settings.host} is not a loopback address and no API keys are set: "
        "set VOICE_AGENT_API_KEYS (and VOICE_AGENT_ADMIN_KEYS), or VOICE_AGENT_ALLOW_OPEN=true "
        "to serve it open on purpose"
    )


def presented_secret(headers: Headers, scope: Scope) -> str | None:
    auth = headers.get("authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip()
    for name in KEY_HEADERS:
        if name in headers:
            return headers[name].strip()
    query: dict[str, list[str]] = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    tokens = query.get("token")
    return tokens[0] if tokens else None


def origin_allowed(headers: Headers, origins: Sequence[str]) -> bool:
    """A browser's WebSocket comes from the service's own host or a configured origin;
    telephony frontends send no Origin at all."""
    origin = headers.get("origin")
    if origin is None:
        return True
    return urlsplit(origin).netloc == headers.get("host", "") or origin in origins


class AccessMiddleware:
    """Refuses before the app sees the request: 401 (no or wrong key), 403 (a user key on an
    admin endpoint, a foreign Origin), 415 (a body that is not JSON where state changes); a
    WebSocket is closed before it is accepted (403 to the client). The key's name goes on
    `scope["state"]["api_key"]` for the audit log."""

    def __init__(self, app: ASGIApp, policy: AccessPolicy) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        refusal = self._refusal(scope, Headers(scope=scope))
        if refusal is None:
            await self.app(scope, receive, send)
        elif scope["type"] == "websocket":
            log.warning("refused a socket to %s: %s", scope["path"], refusal[1])
            await send({"type": "websocket.close", "code": 1008, "reason": refusal[1]})
        else:
            status, reason = refusal
            auth = {"WWW-Authenticate": "Bearer"} if status == 401 else None
            await JSONResponse({"detail": reason}, status, auth)(scope, receive, send)

    def _refusal(self, scope: Scope, headers: Headers) -> tuple[int, str] | None:
        path: str = scope["path"]
        policy = self.policy
        if scope["type"] == "websocket" and not origin_allowed(headers, policy.origins):
            return 403, "origin not allowed"
        admin = path.startswith(ADMIN_PREFIXES)
        if scope["type"] == "http" and scope["method"] in ("POST", "PUT", "PATCH", "DELETE"):
            kind = headers.get("content-type", "").split(";")[0].strip().lower()
            if admin and kind != "application/json":
                return 415, "send the body as application/json"
        state = scope.setdefault("state", {})
        if not policy.enabled:
            state["api_key"] = LOCAL
            return None
        if path in OPEN_PATHS or path.startswith(OPEN_PREFIXES):
            return None
        if path == "/metrics" and policy.metrics_open:
            return None
        if path.startswith("/twilio/") and policy.twilio_signed:
            return None  # the relay's upgrade is checked against Twilio's signature
        secret = presented_secret(headers, scope)
        if secret is None and path == MEDIA_STREAM_PATH and scope["type"] == "websocket":
            # Twilio takes no query on a <Stream> URL: the key comes as a custom parameter of
            # the stream's `start` frame, and the route checks it there (calls.py).
            state[KEY_IN_START] = True
            return None
        key = policy.key_for(secret) if secret else None
        if key is None:
            return 401, "a valid API key is needed" if secret is None else "unknown API key"
        if admin and not key.admin:
            return 403, f"key {key.name!r} is not an admin key"
        state["api_key"] = key.name
        return None


MEDIA_STREAM_PATH = "/twilio/media"
KEY_IN_START = "api_key_in_start"


def key_of(connection: HTTPConnection) -> str:
    """The name of the key a request or socket came with; `local` when keys are off."""
    return str(connection.scope.get("state", {}).get("api_key", LOCAL))


class KeysOutOfLogs(logging.Filter):
    """uvicorn logs each request and socket with its query string, where a frontend that cannot
    set headers sends its key (`token=`): the value is replaced before the line is written."""

    TOKEN = re.compile(r"([?&]token=)[^&\s\"]*")

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(self._clean(a) for a in record.args)
        record.msg = self._clean(record.msg)
        return True

    def _clean(self, value: object) -> object:
        if isinstance(value, str) and "token=" in value:
            return self.TOKEN.sub(r"\1[redacted]", value)
        return value


def keep_keys_out_of_logs() -> None:
    """On uvicorn's loggers, once per process."""
    for name in ("uvicorn.access", "uvicorn.error"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, KeysOutOfLogs) for f in logger.filters):
            logger.addFilter(KeysOutOfLogs())
