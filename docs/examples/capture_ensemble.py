"""Capture real frames of muting, the chat told to its watchers, and paging back.

Like capture.py: the real engine and gateway on loopback with a scripted
model. Two connections: the first (``>>>`` / ``<<<``) changes the chat, the
second (``B>>`` / ``B<<``) only watches it. A long chat is then written
straight through the store and opened, and older turns are asked for.
Run: .venv/bin/python docs/examples/capture_ensemble.py > docs/examples/ensemble_session.txt
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import trio
from trio_websocket import WebSocketConnection, open_websocket_url

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from actors import EngineSettings, open_engine
from llm import ScriptedBackend
from protocol import events as ev
from store import Store
from web import Gateway, GatewaySettings

LONG = 104
"""Turns of the long chat: a few more than ``chat_state`` carries."""


class Side:
    """One connection, printing what it sends and receives under its own mark."""

    def __init__(self, ws: WebSocketConnection, mark: str) -> None:
        self.ws = ws
        self.mark = mark

    async def send(self, frame: dict[str, Any]) -> None:
        print(f"{self.mark}>> " if self.mark else ">>> ", json.dumps(frame), sep="")
        await self.ws.send_message(json.dumps(frame))

    async def until(self, kind: str) -> dict[str, Any]:
        while True:
            with trio.fail_after(10):
                frame: dict[str, Any] = json.loads(await self.ws.get_message())
            print(f"{self.mark}<< " if self.mark else "<<< ", json.dumps(frame), sep="")
            if frame["type"] == kind:
                return frame


def write_long_chat(s: Store, chat_id: str) -> None:
    """``LONG`` short turns, the person and Mira in turn."""
    for n in range(0, LONG, 2):
        user = s.append(ev.UserTurn(chat_id, f"Turn {n}.", ())).ids[0]
        s.append(ev.AssistantTurn(chat_id, "mira", user, None, f"Turn {n + 1}."))


async def main() -> None:
    backend = ScriptedBackend()
    backend.push_narrative('Mira glances at Ada. "She is not talking tonight."')
    backend.push_narrative('Ada sighs and unrolls a map. "North, through the marsh."')
    with tempfile.TemporaryDirectory() as tmp:
        settings = EngineSettings(db_path=Path(tmp) / "t.db", data_dir=Path(tmp))
        async with open_engine(settings, narrative=backend, classifier=backend) as engine:
            gateway = Gateway(engine, GatewaySettings(token="TOKEN", port=0))
            async with trio.open_nursery() as nursery:
                port = await nursery.start(gateway.run)
                url = f"ws://127.0.0.1:{port}/ws?token=TOKEN"
                async with open_websocket_url(url) as ws_a, open_websocket_url(url) as ws_b:
                    a, b = Side(ws_a, ""), Side(ws_b, "B")
                    await a.send({"type": "hello", "protocol": 1, "id": "1"})
                    await a.until("welcome")
                    for n, name in enumerate(("Mira", "Ada", "Tobin"), start=2):
                        persona = f"{name} drinks at the Gilded Eel."
                        await a.send(
                            {"type": "create_bot", "id": str(n), "name": name, "persona": persona}
                        )
                        await a.until("bot")
                    cast = ["mira", "ada", "tobin"]
                    await a.send({"type": "create_chat", "id": "5", "cast": cast})
                    chat_id = (await a.until("chat"))["chat"]["id"]

                    await b.send({"type": "hello", "protocol": 1, "id": "1"})
                    await b.until("welcome")
                    await b.send({"type": "open_chat", "id": "2", "chat_id": chat_id})
                    await b.until("chat_state")
                    await a.send({"type": "open_chat", "id": "6", "chat_id": chat_id})
                    await a.until("chat_state")

                    await a.send(
                        {"type": "leave_scene", "id": "7", "chat_id": chat_id, "bot_id": "tobin"}
                    )
                    await a.until("ok")
                    await a.send({"type": "create_bot", "id": "8", "name": "Wren", "persona": "x"})
                    await a.until("bot")
                    await a.send(
                        {"type": "add_to_cast", "id": "9", "chat_id": chat_id, "bot_id": "wren"}
                    )
                    await a.until("chat_note")  # the chat's own message
                    await a.until("chat")  # the answer
                    await a.send(
                        {"type": "enter_scene", "id": "10", "chat_id": chat_id, "bot_id": "ada"}
                    )
                    await a.until("error")
                    await a.send({"type": "mute", "id": "11", "chat_id": chat_id, "bot_id": "ada"})
                    await a.until("chat_note")
                    await a.until("chat")
                    # The page that only watches saw every change as it happened.
                    for _ in range(3):
                        await b.until("chat_note")

                    prose = '"Ada, where does the north road go?"'
                    await a.send(
                        {"type": "send_turn", "id": "12", "chat_id": chat_id, "prose": prose}
                    )
                    await a.until("turn_settled")
                    await a.send(
                        {
                            "type": "send_turn",
                            "id": "13",
                            "chat_id": chat_id,
                            "prose": '"Mira, is she always like this?"',
                            "reply_as": "ada",
                        }
                    )
                    await a.until("turn_settled")

                    await a.send(
                        {"type": "unmute", "id": "14", "chat_id": chat_id, "bot_id": "ada"}
                    )
                    await a.until("chat_note")
                    await a.send(
                        {"type": "unmute", "id": "15", "chat_id": chat_id, "bot_id": "ada"}
                    )
                    await a.until("error")
                    await a.send(
                        {"type": "mute", "id": "16", "chat_id": chat_id, "bot_id": "nobody"}
                    )
                    await a.until("error")

                    await a.send(
                        {
                            "type": "create_chat",
                            "id": "17",
                            "host_bot_id": "mira",
                            "title": "A long night",
                        }
                    )
                    long_id = (await a.until("chat"))["chat"]["id"]
                    await engine.store.run(write_long_chat, long_id)
                    await a.send({"type": "open_chat", "id": "18", "chat_id": long_id})
                    state = await a.until("chat_state")
                    first = state["timeline"][0]["event_id"]
                    await a.send(
                        {
                            "type": "load_older",
                            "id": "19",
                            "chat_id": long_id,
                            "before_event_id": first,
                            "limit": 2,
                        }
                    )
                    await a.until("older_turns")
                    await a.send(
                        {
                            "type": "load_older",
                            "id": "20",
                            "chat_id": long_id,
                            "before_event_id": first,
                            "limit": 500,
                        }
                    )
                    await a.until("error")
                    await a.send(
                        {
                            "type": "load_older",
                            "id": "21",
                            "chat_id": chat_id,
                            "before_event_id": first,
                            "limit": 10,
                        }
                    )
                    await a.until("error")
                nursery.cancel_scope.cancel()


if __name__ == "__main__":
    trio.run(main)
