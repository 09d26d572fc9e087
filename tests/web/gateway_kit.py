"""A running gateway on loopback and the clients the gateway tests talk to it with."""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import attrs
import trio
import wsproto
import wsproto.events as wse
from trio_websocket import WebSocketConnection

from actors import Engine, EngineSettings, open_engine
from llm import ScriptedBackend
from web import Gateway, GatewaySettings

TOKEN = "test-token"

Message = dict[str, Any]


@attrs.define
class Server:
    """A gateway in front of a real engine whose model is scripted."""

    engine: Engine
    backend: ScriptedBackend
    gateway: Gateway
    port: int

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws?token={TOKEN}"

    async def event_count(self) -> int:
        from store import Store

        return await self.engine.store.run(Store.event_count)


@asynccontextmanager
async def open_server(
    tmp_path: Path, *, engine: dict[str, Any] | None = None, **gateway: Any
) -> AsyncIterator[Server]:
    """Engine (on a real SQLite file) plus gateway on a free port; both stop on exit."""
    backend = ScriptedBackend()
    settings = EngineSettings(
        db_path=tmp_path / "troupe.db",
        data_dir=tmp_path,
        **{"classifier_timeout": 5, **(engine or {})},
    )
    async with open_engine(settings, narrative=backend, classifier=backend) as running:
        gateway_settings = GatewaySettings(**{"token": TOKEN, "port": 0, **gateway})
        front = Gateway(running, gateway_settings)
        async with trio.open_nursery() as nursery:
            port = await nursery.start(front.run)
            yield Server(running, backend, front, port)
            nursery.cancel_scope.cancel()


class Client:
    """A protocol client over a real WebSocket (trio-websocket)."""

    def __init__(self, ws: WebSocketConnection) -> None:
        self.ws = ws
        self.count = 0
        self.backlog: list[Message] = []

    async def send(self, type: str, **fields: Any) -> str:
        """Send a command with a fresh id; returns the id."""
        self.count += 1
        ident = f"m{self.count}"
        await self.ws.send_message(json.dumps({"type": type, "id": ident, **fields}))
        return ident

    async def _next(self) -> Message:
        with trio.fail_after(10):
            message: Message = json.loads(await self.ws.get_message())
        return message

    async def recv(self) -> Message:
        """The next message, in arrival order."""
        if self.backlog:
            return self.backlog.pop(0)
        return await self._next()

    async def ask(self, type: str, **fields: Any) -> Message:
        """Send a command and return its direct answer; other traffic stays queued."""
        ident = await self.send(type, **fields)
        return await self.answer(ident)

    async def answer(self, ident: str) -> Message:
        """The direct answer to the command sent with ``ident``."""
        for index, message in enumerate(self.backlog):
            if message.get("reply_to") == ident:
                return self.backlog.pop(index)
        while True:
            message = await self._next()
            if message.get("reply_to") == ident:
                return message
            self.backlog.append(message)

    async def until(self, type: str, where: Callable[[Message], bool] = lambda _: True) -> Message:
        """Skip messages up to the first ``type`` that matches ``where``."""
        while True:
            message = await self.recv()
            if message["type"] == type and where(message):
                return message

    async def turn(self) -> list[Message]:
        """Every message up to and including the next ``turn_settled``."""
        seen: list[Message] = []
        while not seen or seen[-1]["type"] != "turn_settled":
            seen.append(await self.recv())
        return seen


async def make_chat(client: Client, guest: bool = False) -> str:
    """A bot Mira (and a guest Tobias) and a chat hosted by her; returns the chat id."""
    mira = (await client.ask("create_bot", name="Mira", persona="barkeep"))["bot"]
    guest_id = None
    if guest:
        tobias = await client.ask("create_bot", name="Tobias", persona="lamplighter")
        guest_id = tobias["bot"]["id"]
    chat = await client.ask("create_chat", host_bot_id=mira["id"], guest_bot_id=guest_id)
    return str(chat["chat"]["id"])


def seq_messages(messages: list[Message]) -> list[Message]:
    """The numbered chat messages among ``messages``."""
    return [m for m in messages if "seq" in m and m["type"] != "chat_state"]


class RawClient:
    """A WebSocket client on a plain socket, driven with wsproto.

    For what trio-websocket's client will not do: read nothing at all, with a
    tiny receive buffer, so the server's writes back up at once.
    """

    def __init__(self, stream: trio.SocketStream, ws: wsproto.WSConnection) -> None:
        self.stream = stream
        self.ws = ws
        self._parts: list[str] = []

    @classmethod
    async def connect(cls, port: int, target: str, receive_buffer: int | None = None) -> RawClient:
        sock = trio.socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if receive_buffer is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        await sock.connect(("127.0.0.1", port))
        stream = trio.SocketStream(sock)
        ws = wsproto.WSConnection(wsproto.ConnectionType.CLIENT)
        await stream.send_all(ws.send(wse.Request(host=f"127.0.0.1:{port}", target=target)))
        client = cls(stream, ws)
        while True:
            events = await client._events()
            if any(isinstance(e, wse.AcceptConnection) for e in events):
                return client
            if any(isinstance(e, wse.RejectConnection) for e in events):
                raise ConnectionRefusedError("the handshake was refused")

    async def _events(self) -> list[wse.Event]:
        with trio.fail_after(10):
            data = await self.stream.receive_some(65536)
        self.ws.receive_data(data or None)
        return list(self.ws.events())

    async def send(self, message: Message) -> None:
        await self.stream.send_all(self.ws.send(wse.Message(data=json.dumps(message))))

    async def messages(self) -> AsyncIterator[Message]:
        """Every message until the server closes."""
        while True:
            for event in await self._events():
                if isinstance(event, wse.TextMessage):
                    self._parts.append(event.data)
                    if event.message_finished:
                        yield json.loads("".join(self._parts))
                        self._parts.clear()
                elif isinstance(event, wse.CloseConnection):
                    return

    async def aclose(self) -> None:
        await self.stream.aclose()


async def http_get(
    port: int, target: str, headers: tuple[tuple[str, str], ...] = (), method: str = "GET"
) -> tuple[int, dict[str, str], bytes]:
    """Send exactly this request line over a socket (no client-side path cleaning)."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    lines = [f"{method} {target} HTTP/1.1", f"Host: 127.0.0.1:{port}"]
    lines += [f"{name}: {value}" for name, value in headers]
    await stream.send_all(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
    data = b""
    with trio.fail_after(10):
        while chunk := await stream.receive_some(65536):
            data += chunk
    await stream.aclose()
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    fields = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        fields[name.strip().lower()] = value.strip()
    return int(status_line.split(" ")[1]), fields, body
