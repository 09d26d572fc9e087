"""An OpenAI-compatible server on 127.0.0.1 for tests and benchmarks.

Pure trio and h11. It serves ``/v1/chat/completions`` (streamed over SSE or
not) and ``/v1/models``, and misbehaves on request: answers 429 or 500 first,
streams at a chosen rate, stalls, cuts the connection, sends malformed chunks
or an error object mid-stream, answers a classifier with invalid JSON, or
refuses some ``response_format`` types with a 500 the way llama-cpp-python's
server does. It records every request and every client that left mid-stream.

    async with run_openai_server() as server:
        server.script.text = "Hello there."
        settings = ModelSettings(backend="openai", base_url=server.url)
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import attrs
import h11
import trio


@attrs.define
class Script:
    """How the server answers the next requests."""

    text: str = "Mira squints at the key."
    content: str = '{"significance": 2}'
    """The message content of a non-streamed (classifier) answer."""
    rate: float | None = None
    """Tokens per second; None streams as fast as it can."""
    first_delay: float = 0.0
    classifier_delay: float = 0.0
    """Seconds before a non-streamed (classifier) answer."""
    fail_first: int = 0
    fail_status: int = 500
    retry_after: float | None = None
    stall_after: int | None = None
    cut_after: int | None = None
    malformed_after: int | None = None
    error_after: int | None = None
    error_message: str = "the model is overloaded"
    role_chunk: bool = True
    empty_choices_chunk: bool = True
    usage_chunk: bool = True
    status: int = 200
    body: str | None = None
    """Answer every request with ``status`` and this body instead."""
    refuse_formats: tuple[str, ...] = ()
    """``response_format`` types answered with a 500, as llama-cpp-python's server does."""


@attrs.define
class OpenAIServer:
    """A running server: its URL, its script, and what it saw."""

    port: int = 0
    script: Script = attrs.Factory(Script)
    requests: list[dict[str, Any]] = attrs.Factory(list)
    headers: list[dict[str, str]] = attrs.Factory(list)
    disconnects: int = 0
    completed: int = 0
    refusals: int = 0
    failures_sent: int = 0
    disconnected: trio.Event = attrs.Factory(trio.Event)
    requested: trio.Event = attrs.Factory(trio.Event)
    """Set at the first chat completion request."""

    @property
    def url(self) -> str:
        """The base URL, ending in /v1."""
        return f"http://127.0.0.1:{self.port}/v1"


def _tokens(text: str) -> list[str]:
    words = text.split(" ")
    return [w if i == 0 else " " + w for i, w in enumerate(words)]


def _chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
    payload = {
        "id": "chatcmpl-test",
        "object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return f"data: {json.dumps(payload)}\n\n".encode()


def _refusal(kind: str) -> bytes:
    # The shape llama-cpp-python's server gives a request its schema rejects: any
    # exception in a route becomes a 500 "internal_server_error" with its text.
    allowed = " or ".join(repr(k) for k in ("text", "json_object") if k != kind)
    message = (
        "1 validation error for CreateChatCompletionRequest\nresponse_format.type\n"
        f"  Input should be {allowed} [type=literal_error, input_value={kind!r}, "
        "input_type=str]"
    )
    error = {"message": message, "type": "internal_server_error", "param": None, "code": None}
    return json.dumps({"error": error}).encode()


class _Gone(Exception):
    pass


async def _handle(server: OpenAIServer, stream: trio.SocketStream) -> None:
    conn = h11.Connection(h11.SERVER)
    try:
        while True:
            request, body = await _read_request(conn, stream)
            if request is None:
                return
            keep = await _respond(server, conn, stream, request, body)
            if not keep or conn.our_state is h11.MUST_CLOSE:
                return
            conn.start_next_cycle()
    except (_Gone, trio.BrokenResourceError, trio.ClosedResourceError, h11.RemoteProtocolError):
        return
    finally:
        with trio.CancelScope(shield=True):
            await stream.aclose()


async def _read_request(conn: h11.Connection, stream: trio.SocketStream) -> tuple[Any, bytes]:
    request = None
    body = b""
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            data = await stream.receive_some(65536)
            if not data and conn.their_state is h11.IDLE:
                return None, b""
            conn.receive_data(data)
            continue
        if isinstance(event, h11.Request):
            request = event
        elif isinstance(event, h11.Data):
            body += bytes(event.data)
        elif isinstance(event, h11.EndOfMessage):
            return request, body
        elif isinstance(event, h11.ConnectionClosed):
            return None, b""


async def _send(conn: h11.Connection, stream: trio.SocketStream, event: Any) -> None:
    data = conn.send(event)
    if data:
        await stream.send_all(data)


async def _simple(
    conn: h11.Connection,
    stream: trio.SocketStream,
    status: int,
    body: bytes,
    headers: list[tuple[str, str]] | None = None,
) -> None:
    all_headers = [("content-type", "application/json"), ("content-length", str(len(body)))]
    await _send(
        conn, stream, h11.Response(status_code=status, headers=all_headers + (headers or []))
    )
    await _send(conn, stream, h11.Data(data=body))
    await _send(conn, stream, h11.EndOfMessage())


async def _respond(
    server: OpenAIServer, conn: h11.Connection, stream: trio.SocketStream, request: Any, raw: bytes
) -> bool:
    script = server.script
    path = request.target.decode()
    server.headers.append({k.decode(): v.decode() for k, v in request.headers})
    if path.endswith("/models"):
        await _simple(conn, stream, 200, b'{"object":"list","data":[{"id":"test-model"}]}')
        return True
    if not path.endswith("/chat/completions"):
        await _simple(conn, stream, 404, b'{"error":{"message":"no such path"}}')
        return True
    body = json.loads(raw or b"{}")
    server.requests.append(body)
    server.requested.set()
    if script.body is not None:
        await _simple(conn, stream, script.status, script.body.encode())
        return True
    kind = (body.get("response_format") or {}).get("type")
    if kind in script.refuse_formats:
        server.refusals += 1
        await _simple(conn, stream, 500, _refusal(kind))
        return True
    if server.failures_sent < script.fail_first:
        server.failures_sent += 1
        headers = []
        if script.retry_after is not None:
            headers.append(("retry-after", str(script.retry_after)))
        await _simple(
            conn, stream, script.fail_status, b'{"error":{"message":"try later"}}', headers
        )
        return True
    if not body.get("stream"):
        if script.classifier_delay:
            await trio.sleep(script.classifier_delay)
        answer = {
            "id": "chatcmpl-test",
            "object": "chat.completion",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": script.content},
                    "finish_reason": "stop",
                }
            ],
        }
        await _simple(conn, stream, 200, json.dumps(answer).encode())
        server.completed += 1
        return True
    await _stream(server, conn, stream)
    return False


async def _stream(server: OpenAIServer, conn: h11.Connection, stream: trio.SocketStream) -> None:
    script = server.script
    await _send(
        conn,
        stream,
        h11.Response(
            status_code=200,
            headers=[
                ("content-type", "text/event-stream"),
                ("cache-control", "no-cache"),
                ("connection", "close"),
            ],
        ),
    )

    async def watch_for_leaving(scope: trio.CancelScope) -> None:
        # The request is read in full: the next thing from the client is its leaving.
        try:
            data = await stream.receive_some(1024)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            data = b""
        if not data:
            server.disconnects += 1
            server.disconnected.set()
            scope.cancel()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(watch_for_leaving, nursery.cancel_scope)

        async def emit(data: bytes) -> None:
            try:
                await _send(conn, stream, h11.Data(data=data))
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                server.disconnects += 1
                server.disconnected.set()
                raise _Gone() from None

        async def replay() -> None:
            if script.first_delay:
                await trio.sleep(script.first_delay)
            if script.role_chunk:
                await emit(_chunk({"role": "assistant"}))
            if script.empty_choices_chunk:
                await emit(b'data: {"id":"x","object":"chat.completion.chunk","choices":[]}\n\n')
            for index, token in enumerate(_tokens(script.text)):
                if index == script.stall_after:
                    await trio.sleep_forever()
                if index == script.cut_after:
                    await stream.aclose()
                    raise _Gone()
                if index == script.malformed_after:
                    await emit(b"data: {this is not json\n\n")
                if index == script.error_after:
                    payload = {"error": {"message": script.error_message, "type": "server_error"}}
                    await emit(f"data: {json.dumps(payload)}\n\n".encode())
                if script.rate:
                    await trio.sleep(1 / script.rate)
                await emit(_chunk({"content": token}))
            await emit(_chunk({}, "stop"))
            if script.usage_chunk:
                await emit(
                    b'data: {"id":"x","choices":[],"usage":{"prompt_tokens":5,'
                    b'"completion_tokens":7,"total_tokens":12}}\n\n'
                )
            await emit(b"data: [DONE]\n\n")
            await _send(conn, stream, h11.EndOfMessage())
            server.completed += 1

        try:
            await replay()
        except (_Gone, trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        nursery.cancel_scope.cancel()


@asynccontextmanager
async def run_openai_server() -> AsyncIterator[OpenAIServer]:
    """Serve on a free loopback port for the block."""
    server = OpenAIServer()
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(
            partial(trio.serve_tcp, partial(_handle, server), 0, host="127.0.0.1")
        )
        server.port = listeners[0].socket.getsockname()[1]
        yield server
        nursery.cancel_scope.cancel()
