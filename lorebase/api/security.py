"""API keys: optional on loopback, required on any other address."""

from __future__ import annotations

import hmac

from fastapi import Request

from lorebase.errors import LorebaseError, SettingsError
from lorebase.server_binding import is_loopback
from lorebase.settings import ServerSettings


class Unauthorized(LorebaseError):
    code = "invalid_api_key"


def check_binding(server: ServerSettings) -> None:
    """Refuse to start open to the network without keys."""
    if not is_loopback(server.host) and not server.api_keys:
        raise SettingsError(
            f"setting server.api_keys is required when server.host is {server.host!r} (not loopback): "
            'set LOREBASE_SERVER__API_KEYS=\'["<key>"]\''
        )


class KeyCheck:
    """A FastAPI dependency: a valid `Authorization: Bearer <key>` when keys are configured."""

    def __init__(self, server: ServerSettings) -> None:
        self._keys = [k.get_secret_value().encode() for k in server.api_keys]

    def __call__(self, request: Request) -> None:
        if not self._keys:
            return
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        given = token.strip().encode()
        # compare_digest against every key: timing does not reveal which prefix matched
        if scheme.lower() != "bearer" or not any(hmac.compare_digest(given, k) for k in self._keys):
            raise Unauthorized("missing or invalid API key: send Authorization: Bearer <key>")
