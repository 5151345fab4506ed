"""API-key protection for a reward server that listens beyond this machine.

Policy (enforced by :func:`check_exposure` before anything is loaded): a loopback address
(127.0.0.0/8, ::1, ``localhost``) needs nothing; any other address needs an API key file
(``--api-key-file``) unless the operator says ``--insecure`` explicitly.

With a key, every route except the probes ``/healthz`` and ``/readyz`` (which say nothing about
the model and must answer orchestrators without credentials) needs ``Authorization: Bearer KEY``
or ``X-API-Key: KEY``; the comparison is constant-time (:func:`hmac.compare_digest`), and a
missing or wrong key is a 401 that does not say which.
"""
from __future__ import annotations

import hmac
import ipaddress
import socket
from pathlib import Path
from typing import Any

from starlette.responses import JSONResponse

from pluralrm.errors import ConfigError

OPEN_PATHS = frozenset({"/healthz", "/readyz"})
MIN_KEY_CHARS = 16


def is_loopback(host: str) -> bool:
    """Whether every address ``host`` resolves to is a loopback address."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(i[4][0].split("%")[0]).is_loopback for i in infos)


def read_api_key(path: str | Path) -> str:
    """The key in ``path`` (surrounding whitespace removed); refuses an empty or short key."""
    p = Path(path)
    try:
        key = p.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"--api-key-file {p}: cannot read it ({getattr(e, 'strerror', None) or e})") from None
    if len(key) < MIN_KEY_CHARS or any(c.isspace() for c in key):
        raise ConfigError(f"--api-key-file {p}: the key must be one word of at least {MIN_KEY_CHARS} characters "
                          f"(for example: python -c 'import secrets; print(secrets.token_urlsafe(32))' > {p})")
    return key


def check_exposure(host: str, api_key_file: str | Path | None, insecure: bool) -> None:
    """Refuses a non-loopback ``host`` without an API key file, unless ``insecure``."""
    if api_key_file is None and not insecure and not is_loopback(host):
        raise ConfigError(
            f"--host {host} accepts connections from other machines: give --api-key-file FILE "
            "(clients then send 'Authorization: Bearer <key>'), or --insecure to serve without a key"
        )


class ApiKeyAuth:
    """ASGI middleware: 401 unless the request carries the key (see the module docstring)."""

    def __init__(self, app: Any, key: str):
        self.app = app
        self._key = key.encode()

    def _authorized(self, headers: dict[bytes, bytes]) -> bool:
        given = headers.get(b"x-api-key")
        if given is None:
            auth = headers.get(b"authorization", b"")
            scheme, _, token = auth.partition(b" ")
            given = token.strip() if scheme.lower() == b"bearer" else b""
        return hmac.compare_digest(given, self._key)

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope.get("path") in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        if not self._authorized(dict(scope.get("headers") or ())):
            response = JSONResponse(
                status_code=401, headers={"WWW-Authenticate": "Bearer"},
                content={"error": "unauthorized: send the server's API key as 'Authorization: Bearer <key>' "
                                  "or 'X-API-Key: <key>'"})
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


__all__ = ["ApiKeyAuth", "OPEN_PATHS", "check_exposure", "is_loopback", "read_api_key"]
