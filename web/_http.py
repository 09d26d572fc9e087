"""The plain-HTTP side of the one port: the web client's files, /healthz, and 404.

A request's head is read here; a WebSocket upgrade is handed on with the
bytes already read (see :class:`Replay`), everything else gets one response
and the connection closes.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import attrs
import trio

MAX_HEAD = 16 * 1024
HEAD_TIMEOUT = 10.0

_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".json": "application/json",
}


class BadRequest(Exception):
    """The bytes are not an HTTP request we can read."""


@attrs.frozen
class Request:
    """A request head: method, path, query and headers (names lower-cased)."""

    method: str
    target: str
    headers: dict[str, str]

    @property
    def path(self) -> str:
        """The path, %-decoded."""
        return unquote(urlsplit(self.target).path)

    @property
    def query(self) -> dict[str, list[str]]:
        """The query string's parameters."""
        return parse_qs(urlsplit(self.target).query)

    @property
    def is_websocket(self) -> bool:
        """An upgrade to WebSocket."""
        return (
            "websocket" in self.headers.get("upgrade", "").lower()
            and "upgrade" in self.headers.get("connection", "").lower()
        )


async def read_head(stream: trio.abc.Stream) -> tuple[Request, bytes]:
    """Read one request head; returns it and every byte read (for a WebSocket replay)."""
    data = b""
    with trio.fail_after(HEAD_TIMEOUT):
        while b"\r\n\r\n" not in data:
            if len(data) > MAX_HEAD:
                raise BadRequest("the request head is too large")
            chunk = await stream.receive_some(4096)
            if not chunk:
                raise BadRequest("the connection closed before a request")
            data += chunk
    head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    lines = head.split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/"):
        raise BadRequest("not an HTTP request")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep:
            raise BadRequest("a malformed header")
        headers[name.strip().lower()] = value.strip()
    return Request(parts[0], parts[1], headers), data


class Replay(trio.abc.Stream):
    """A stream that first gives back bytes already read from it."""

    def __init__(self, stream: trio.abc.Stream, prefix: bytes) -> None:
        self._stream = stream
        self._prefix = prefix

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        if self._prefix:
            size = len(self._prefix) if max_bytes is None else max_bytes
            chunk, self._prefix = self._prefix[:size], self._prefix[size:]
            await trio.lowlevel.checkpoint()
            return chunk
        return bytes(await self._stream.receive_some(max_bytes))

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self._stream.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self._stream.wait_send_all_might_not_block()

    async def send_eof(self) -> None:
        send_eof = getattr(self._stream, "send_eof", None)
        if send_eof is not None:
            await send_eof()

    async def aclose(self) -> None:
        await self._stream.aclose()

    def __getattr__(self, name: str) -> object:
        # trio-websocket asks the stream for its socket to learn the addresses.
        return getattr(self._stream, name)


def response(
    status: int,
    reason: str,
    body: bytes,
    content_type: str = "text/plain; charset=utf-8",
    head_only: bool = False,
) -> bytes:
    """A complete HTTP/1.1 response that closes the connection."""
    headers = [
        f"HTTP/1.1 {status} {reason}",
        f"Content-Type: {content_type}",
        f"Content-Length: {len(body)}",
        "Connection: close",
        "Cache-Control: no-cache",
        "X-Content-Type-Options: nosniff",
        "Referrer-Policy: no-referrer",
    ]
    if content_type.startswith("text/html"):
        headers.append(
            "Content-Security-Policy: default-src 'self'; connect-src 'self' ws: wss:; "
            "img-src 'self' data:; style-src 'self'; script-src 'self'"
        )
    return ("\r\n".join(headers) + "\r\n\r\n").encode() + (b"" if head_only else body)


def static_file(static_dir: Path, path: str) -> Path | None:
    """The file ``/static/<name>`` names inside ``static_dir``, or None; nothing escapes it."""
    if "\x00" in path or "\\" in path:
        return None
    root = static_dir.resolve()
    relative = path[len("/static/") :]
    if not relative or relative.startswith("/"):
        return None
    candidate = (root / relative).resolve()
    if not candidate.is_relative_to(root) or not candidate.is_file():
        return None
    return candidate


def answer(request: Request, static_dir: Path) -> bytes:
    """The response to a plain HTTP request."""
    head_only = request.method == "HEAD"
    if request.method not in ("GET", "HEAD"):
        return response(405, "Method Not Allowed", b"only GET\n")
    path = request.path
    if path == "/healthz":
        return response(200, "OK", b"ok", head_only=head_only)
    if path in ("/", "/index.html"):
        file: Path | None = static_dir / "index.html"
    elif path.startswith("/static/"):
        file = static_file(static_dir, path)
    else:
        file = None
    if file is None or not file.is_file():
        return response(404, "Not Found", b"not found\n", head_only=head_only)
    kind = (
        _TYPES.get(file.suffix) or mimetypes.guess_type(file.name)[0] or "application/octet-stream"
    )
    return response(200, "OK", file.read_bytes(), kind, head_only=head_only)
