"""What a WebSocket opening handshake must carry before trio-websocket sees it.

trio-websocket refuses a bad handshake on the wire but then waits forever for
a request that never comes, holding the connection's task and buffers; and it
takes any ``Sec-WebSocket-Key``, even an empty one. So the gateway checks
every rule of RFC 6455 section 4.2.1 here, on the head it has already read,
and hands on only a handshake that will complete.
"""

from __future__ import annotations

import binascii
from base64 import b64decode

import attrs

from ._http import Request

VERSION = "13"
"""The one WebSocket version spoken (RFC 6455)."""


@attrs.frozen
class Refusal:
    """An HTTP answer that refuses the upgrade: the client's fault, said for a person."""

    status: int
    message: str
    headers: tuple[tuple[str, str], ...] = ()


def _tokens(value: str) -> list[str]:
    return [token.strip().lower() for token in value.split(",")]


def _valid_key(key: str) -> bool:
    # The key is 16 random bytes in base64: 24 characters ending in "==".
    if len(key) != 24:
        return False
    try:
        return len(b64decode(key, validate=True)) == 16
    except (binascii.Error, ValueError):
        return False


def _valid_host(host: str) -> bool:
    # wsproto decodes the Host as IDNA and fails on what does not decode.
    try:
        host.encode("latin-1").decode("idna")
    except (UnicodeError, ValueError):
        return False
    return bool(host)


def check_handshake(request: Request) -> Refusal | None:
    """Why this upgrade request cannot become a WebSocket, or None when it can."""
    headers = request.headers
    if request.method != "GET":
        return Refusal(400, "a WebSocket handshake is a GET request")
    if "upgrade" not in _tokens(headers.get("connection", "")):
        return Refusal(400, "a WebSocket handshake needs 'Connection: Upgrade'")
    if _tokens(headers.get("upgrade", "")) != ["websocket"]:
        return Refusal(400, "a WebSocket handshake needs 'Upgrade: websocket'")
    version = headers.get("sec-websocket-version")
    if version is None:
        return Refusal(
            400,
            f"a WebSocket handshake needs 'Sec-WebSocket-Version: {VERSION}'",
            (("Sec-WebSocket-Version", VERSION),),
        )
    if version.strip() != VERSION:
        return Refusal(
            426,
            f"WebSocket version {version.strip()[:16]!r} is not spoken here; only {VERSION} is",
            (("Sec-WebSocket-Version", VERSION),),
        )
    key = headers.get("sec-websocket-key")
    if key is None or not _valid_key(key.strip()):
        return Refusal(
            400, "'Sec-WebSocket-Key' must be 16 random bytes in base64 (24 characters)"
        )
    if not _valid_host(headers.get("host", "")):
        return Refusal(400, "a WebSocket handshake needs a 'Host' header with a host name")
    return None
