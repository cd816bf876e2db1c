"""Twilio's request signature: base64 of HMAC-SHA1 over the URL Twilio called (for a WebSocket
upgrade there is no body), keyed with the account's auth token. Behind a TLS-terminating proxy
the service sees ws:// where Twilio signed wss:// (and http:// for https://), so both schemes
are tried."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping

HEADER = "x-twilio-signature"
_SCHEMES = (("ws://", "wss://"), ("http://", "https://"))


def signature(auth_token: str, url: str) -> str:
    digest = hmac.new(auth_token.encode("utf-8"), url.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def twilio_signature_ok(auth_token: str, url: str, given: str) -> bool:
    candidates = {url}
    for plain, secure in _SCHEMES:
        if url.startswith(plain):
            candidates.add(secure + url[len(plain) :])
        elif url.startswith(secure):
            candidates.add(plain + url[len(secure) :])
    return any(hmac.compare_digest(signature(auth_token, c), given) for c in candidates)


def upgrade_signed(auth_token: str, url: str, headers: Mapping[str, str]) -> bool:
    """Whether a WebSocket upgrade to `url` carries Twilio's signature for it."""
    return twilio_signature_ok(auth_token, url, headers.get(HEADER, ""))
