"""The plain-HTTP side of the one port: the web client's files, /healthz and 404.

h11 reads each request head. A WebSocket upgrade is handed on together with
the bytes already read (see :class:`Replay`); anything else gets one
response and the connection closes, which keeps this side small: the page
loads a handful of files once.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import attrs
import h11
import trio

MAX_HEAD = 16 * 1024
"""A request head larger than this is refused (431)."""
HEAD_TIMEOUT = 10.0
"""Seconds a client has to send its request head."""

_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".ico": "image/x-icon",
    ".json": "application/json",
    ".txt": "text/plain; charset=utf-8",
    ".woff2": "font/woff2",
}

_REASONS = {
    200: b"OK",
    400: b"Bad Request",
    401: b"Unauthorized",
    403: b"Forbidden",
    404: b"Not Found",
    405: b"Method Not Allowed",
    408: b"Request Timeout",
    409: b"Conflict",
    413: b"Content Too Large",
    426: b"Upgrade Required",
    431: b"Request Header Fields Too Large",
    500: b"Internal Server Error",
    503: b"Service Unavailable",
    507: b"Insufficient Storage",
}

# The page loads only its own files and talks only to its own server.
_PAGE_POLICY = (
    "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; "
    "style-src 'self'; script-src 'self'; frame-ancestors 'none'"
)


class BadRequest(Exception):
    """The client's bytes are not an HTTP/1.1 request we can serve: their fault."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@attrs.frozen
class Request:
    """A request head: method, target and headers (names lower-cased, repeats joined)."""

    method: str
    target: str
    headers: dict[str, str]
    http: h11.Connection = attrs.field(eq=False, repr=False)
    """The h11 state of this exchange, which renders the response."""

    @property
    def path(self) -> str:
        """The target's path, %-decoded."""
        return unquote(urlsplit(self.target).path)

    @property
    def query(self) -> dict[str, list[str]]:
        """The target's query parameters."""
        return parse_qs(urlsplit(self.target).query)

    @property
    def is_websocket(self) -> bool:
        """True for an upgrade to WebSocket."""
        upgrade = self.headers.get("upgrade", "").lower()
        connection = self.headers.get("connection", "").lower()
        return "websocket" in upgrade and "upgrade" in connection


async def read_request(stream: trio.abc.Stream) -> tuple[Request, bytes] | None:
    """Read one request head: the request and every byte read so far (for a WebSocket).

    None when the client went away before a whole head arrived. Raises
    :class:`BadRequest` for bytes that are not a request, and
    :class:`trio.TooSlowError` after :data:`HEAD_TIMEOUT`.
    """
    http = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
    raw = bytearray()
    with trio.fail_after(HEAD_TIMEOUT):
        while True:
            try:
                event = http.next_event()
            except h11.RemoteProtocolError as exc:
                raise BadRequest(exc.error_status_hint, str(exc) or "malformed request") from None
            if event is h11.NEED_DATA:
                chunk = await stream.receive_some(4096)
                raw += chunk
                http.receive_data(bytes(chunk))  # b"" tells h11 the client closed
                continue
            if isinstance(event, h11.Request):
                break
            return None  # the client closed before a request
    headers: dict[str, str] = {}
    for name, value in event.headers:
        key = name.decode("ascii").lower()
        text = value.decode("latin-1")
        headers[key] = f"{headers[key]}, {text}" if key in headers else text
    method = event.method.decode("ascii")
    request = Request(method, event.target.decode("ascii", "replace"), headers, http)
    return request, bytes(raw)


def render(
    request: Request | None,
    status: int,
    body: bytes,
    content_type: str = "text/plain; charset=utf-8",
    extra: tuple[tuple[str, str], ...] = (),
) -> bytes:
    """A complete response that closes the connection (through h11 when a request was read)."""
    headers = [
        *extra,
        ("Content-Type", content_type),
        ("Content-Length", str(len(body))),
        ("Connection", "close"),
        ("Cache-Control", "no-cache"),
        ("X-Content-Type-Options", "nosniff"),
        ("Referrer-Policy", "no-referrer"),
    ]
    if content_type.startswith("text/html"):
        headers.append(("Content-Security-Policy", _PAGE_POLICY))
    reason = _REASONS.get(status, b"")
    if request is None:
        # No request was read, so h11 has nothing to answer: write it out by hand.
        lines = [b"HTTP/1.1 %d %s" % (status, reason)]
        lines += [f"{k}: {v}".encode("latin-1") for k, v in headers]
        return b"\r\n".join(lines) + b"\r\n\r\n" + body
    http = request.http
    out = http.send(h11.Response(status_code=status, headers=headers, reason=reason)) or b""
    if request.method != "HEAD":
        out += http.send(h11.Data(data=body)) or b""
    return out + (http.send(h11.EndOfMessage()) or b"")


def static_file(static_dir: Path, path: str) -> Path | None:
    """The file that ``/static/<name>`` names inside ``static_dir``, or None.

    ``path`` is already %-decoded. Nothing outside the folder is ever
    returned: not through ``..``, an absolute name, a backslash, or a
    symlink that points out of it.
    """
    if not path.startswith("/static/") or "\x00" in path or "\\" in path:
        return None
    relative = path[len("/static/") :]
    parts = relative.split("/")
    if any(part in ("", ".", "..") for part in parts):
        return None
    root = static_dir.resolve()
    candidate = root.joinpath(*parts).resolve()
    if not candidate.is_relative_to(root) or not candidate.is_file():
        return None
    return candidate


def _page(static_dir: Path, path: str) -> tuple[bytes, str] | None:
    if path in ("/", "/index.html"):
        path = "/static/index.html"
    file = static_file(static_dir, path)
    if file is None:
        return None
    kind = (
        _TYPES.get(file.suffix.lower())
        or mimetypes.guess_type(file.name)[0]
        or "application/octet-stream"
    )
    return file.read_bytes(), kind


async def answer(request: Request, static_dir: Path) -> bytes:
    """The response to a plain HTTP request: a page, ``ok`` from /healthz, or an error."""
    if request.method not in ("GET", "HEAD"):
        return render(request, 405, b"only GET and HEAD are served here\n")
    path = request.path
    if path == "/healthz":
        return render(request, 200, b"ok")
    if path == "/ws":
        return render(request, 426, b"/ws speaks WebSocket only\n")
    page = await trio.to_thread.run_sync(_page, static_dir, path)
    if page is None:
        return render(request, 404, b"not found\n")
    body, kind = page
    return render(request, 200, body, kind)


class Replay(trio.abc.Stream):
    """A stream that first gives back the bytes already read from it.

    The gateway reads a request head itself to route it; trio-websocket then
    reads the same head again from this stream to do the handshake.
    """

    def __init__(self, stream: trio.abc.Stream, prefix: bytes) -> None:
        self._stream = stream
        self._prefix = prefix

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        """The replayed bytes first, then the socket's."""
        if self._prefix:
            size = len(self._prefix) if max_bytes is None else max_bytes
            chunk, self._prefix = self._prefix[:size], self._prefix[size:]
            await trio.lowlevel.checkpoint()
            return chunk
        return bytes(await self._stream.receive_some(max_bytes))

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        """Write to the socket."""
        await self._stream.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        """As the socket's."""
        await self._stream.wait_send_all_might_not_block()

    async def aclose(self) -> None:
        """Close the socket."""
        await self._stream.aclose()

    def __getattr__(self, name: str) -> object:
        # trio-websocket asks the stream for its socket to learn the peer's address.
        return getattr(self._stream, name)
