"""Capture real frames from a running gateway for docs/protocol.md.

Runs the real engine and gateway on loopback with a scripted model, plays a
short session over a WebSocket, and prints every frame sent and received.
Run: .venv/bin/python docs/examples/capture.py > docs/examples/session.txt
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import httpx
import trio
from trio_websocket import open_websocket_url

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import story
from actors import EngineSettings, open_engine
from llm import ScriptedBackend
from store import import_card
from web import Gateway, GatewaySettings

TOBIN = json.dumps(
    {
        "spec": "chara_card_v3",
        "spec_version": "3.0",
        "data": {
            "name": "Tobin",
            "description": "{{char}} hauls crates on the docks.",
            "first_mes": "Crates don't carry themselves, {{user}}.",
            "alternate_greetings": ["Back again, {{user}}? Grab a rope."],
        },
    }
).encode()


async def main() -> None:
    backend = ScriptedBackend()
    backend.push_narrative('Mira squints at the key. "Where did you get that?"')
    backend.push_narrative(text="Long ago the keeper lit the lamp every night", stall_after=3)
    for pair in ("mira -> you", "you -> mira"):
        backend.push_classifier(
            "state_update",
            {"affinity_delta": 2, "trust_delta": -1, "knowledge_facts": ["has a brass key"]},
            match=f"pair: {pair}",
        )
    backend.push_classifier("significance", 3)
    with tempfile.TemporaryDirectory() as tmp:
        settings = EngineSettings(db_path=Path(tmp) / "t.db", data_dir=Path(tmp))
        async with open_engine(settings, narrative=backend, classifier=backend) as engine:
            gateway = Gateway(engine, GatewaySettings(token="TOKEN", port=0))
            async with trio.open_nursery() as nursery:
                port = await nursery.start(gateway.run)
                async with open_websocket_url(f"ws://127.0.0.1:{port}/ws?token=TOKEN") as ws:

                    async def send(frame: dict[str, object]) -> None:
                        print(">>> " + json.dumps(frame))
                        await ws.send_message(json.dumps(frame))

                    async def until(kind: str) -> dict[str, object]:
                        while True:
                            with trio.fail_after(10):
                                frame = json.loads(await ws.get_message())
                            print("<<< " + json.dumps(frame))
                            if frame["type"] == kind:
                                return frame

                    await send({"type": "hello", "protocol": 1, "id": "1"})
                    await until("welcome")
                    await send(
                        {
                            "type": "create_bot",
                            "id": "2",
                            "name": "Mira",
                            "persona": "Keeps the bar at the Gilded Eel.",
                            "greeting": "Rain's coming in.",
                        }
                    )
                    await until("bot")
                    await send(
                        {
                            "type": "create_chat",
                            "id": "3",
                            "host_bot_id": "mira",
                            "location": "The Gilded Eel",
                        }
                    )
                    chat = (await until("chat"))["chat"]
                    chat_id = chat["id"]  # type: ignore[index]
                    await send({"type": "open_chat", "id": "4", "chat_id": chat_id})
                    await until("chat_state")
                    await send(
                        {
                            "type": "send_turn",
                            "id": "5",
                            "chat_id": chat_id,
                            "prose": '*I slide a brass key across the bar.* "Recognise this?"',
                        }
                    )
                    await until("turn_settled")
                    await send(
                        {
                            "type": "send_turn",
                            "id": "6",
                            "chat_id": chat_id,
                            "prose": "Tell me about the lighthouse.",
                        }
                    )
                    await until("busy" if False else "token")
                    await send(
                        {"type": "send_turn", "id": "7", "chat_id": chat_id, "prose": "And?"}
                    )
                    await until("error")
                    await send({"type": "cancel", "id": "8", "chat_id": chat_id})
                    await until("turn_settled")
                    await send(
                        {"type": "rewind_preview", "id": "9", "chat_id": chat_id, "event_id": 5}
                    )
                    await until("rewind_preview")
                    await send({"type": "list_memories", "id": "10", "bot_id": "mira"})
                    await until("memories")
                    await send(
                        {
                            "type": "create_world_event",
                            "id": "11",
                            "chat_id": chat_id,
                            "title": "The storm",
                            "description": "A storm batters the harbour.",
                            "artifacts": {
                                "acquired_objects": [{"holder_id": "you", "name": "storm lantern"}]
                            },
                        }
                    )
                    await until("ok")
                    await send({"type": "dance", "id": "12"})
                    await until("error")
                    await send({"type": "open_chat", "id": "13", "chat_id": "nope"})
                    await until("error")
                    base = f"http://127.0.0.1:{port}"
                    async with httpx.AsyncClient(base_url=base) as http:

                        async def upload(what: str, doc: dict[str, object]) -> None:
                            data = json.dumps(doc).encode()
                            print(f"HTTP> POST /api/import ({what}, {len(data)} bytes)")
                            print("HTTP> " + data.decode())
                            answer = await http.post(
                                "/api/import",
                                content=data,
                                headers={"Authorization": "Bearer TOKEN"},
                                params={"name": "harbour"},
                            )
                            print(f"HTTP< {answer.status_code} {answer.text}")

                        await upload(
                            "a V1 card",
                            {
                                "name": "Tam",
                                "description": "A lamplighter.",
                                "first_mes": "Evening.",
                            },
                        )
                        await until("bot")
                        await upload(
                            "a SillyTavern world-info file",
                            {"entries": {"0": {"uid": 0, "key": ["harbour"], "content": "Fog."}}},
                        )
                        await until("lorebook")
                        await upload("a card without a name", {"description": "Nobody."})
                    await send({"type": "list_lorebooks", "id": "14"})
                    listed = await until("lorebooks")
                    # Steering: the lorebook imported above attached, an author's note,
                    # a card (imported as the endpoint would) edited and greeted with.
                    book = listed["lorebooks"][0]["lorebook_id"]  # type: ignore[index]
                    await send(
                        {
                            "type": "attach_lorebook",
                            "id": "15",
                            "chat_id": chat_id,
                            "lorebook_id": book,
                        }
                    )
                    await until("ok")
                    note = {"type": "set_author_note", "chat_id": chat_id}
                    await send({**note, "id": "16", "text": "Keep the fog thick.", "depth": 2})
                    await until("ok")
                    await send({**note, "id": "17", "text": "Deeper.", "depth": 101})
                    await until("error")
                    card = story.read_import(TOBIN)
                    assert isinstance(card, story.ImportedCard)
                    tobin = await engine.store.run(lambda s: import_card(s, card))
                    await send(
                        {
                            "type": "update_card",
                            "id": "18",
                            "bot_id": tobin,
                            "scenario": "Night on the docks; {{user}} needs a boat.",
                        }
                    )
                    await until("bot")
                    await send(
                        {"type": "create_chat", "id": "19", "host_bot_id": tobin, "greeting": 1}
                    )
                    await until("chat")
                    await send(
                        {
                            "type": "update_chat_settings",
                            "id": "20",
                            "chat_id": chat_id,
                            "temperature": 0.6,
                            "min_p": 0.1,
                            "max_tokens": 200,
                        }
                    )
                    await until("chat_settings")
                    await send(
                        {
                            "type": "update_chat_settings",
                            "id": "21",
                            "chat_id": chat_id,
                            "temperature": 3,
                        }
                    )
                    await until("error")
                nursery.cancel_scope.cancel()


if __name__ == "__main__":
    trio.run(main)
