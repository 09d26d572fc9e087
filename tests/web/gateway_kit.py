"""A protocol client and a handle on a running gateway, for the gateway tests."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import attrs
import trio
from trio_websocket import WebSocketConnection

from actors import Engine
from llm import ScriptedBackend
from web import Gateway

TOKEN = "test-token"


@attrs.define
class Server:
    engine: Engine
    backend: ScriptedBackend
    gateway: Gateway
    port: int

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws?token={TOKEN}"


class Client:
    """A protocol client over a real WebSocket."""

    def __init__(self, ws: WebSocketConnection) -> None:
        self.ws = ws
        self.count = 0
        self.backlog: list[dict[str, Any]] = []

    async def send(self, type: str, **fields: Any) -> str:
        self.count += 1
        ident = f"m{self.count}"
        await self.ws.send_message(json.dumps({"type": type, "id": ident, **fields}))
        return ident

    async def recv(self) -> dict[str, Any]:
        if self.backlog:
            return self.backlog.pop(0)
        with trio.fail_after(10):
            return json.loads(await self.ws.get_message())  # type: ignore[no-any-return]

    async def ask(self, type: str, **fields: Any) -> dict[str, Any]:
        """Send a command and return its direct answer (skipping chat traffic)."""
        ident = await self.send(type, **fields)
        skipped = []
        while True:
            with trio.fail_after(10):
                message = json.loads(await self.ws.get_message())
            if message.get("reply_to") == ident:
                self.backlog.extend(skipped)
                return message  # type: ignore[no-any-return]
            skipped.append(message)

    async def until(
        self, type: str, where: Callable[[dict[str, Any]], bool] = lambda _: True
    ) -> dict[str, Any]:
        while True:
            message = await self.recv()
            if message["type"] == type and where(message):
                return message


async def make_chat(client: Client, guest: bool = False) -> str:
    mira = (await client.ask("create_bot", name="Mira", persona="barkeep"))["bot"]
    guest_id = None
    if guest:
        guest_id = (await client.ask("create_bot", name="Tobias", persona="lamplighter"))["bot"][
            "id"
        ]
    chat = await client.ask("create_chat", host_bot_id=mira["id"], guest_bot_id=guest_id)
    return str(chat["chat"]["id"])
