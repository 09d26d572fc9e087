"""Commands sent with a ``command_id`` run once: a retry gets the first answer and writes nothing.

Over real WebSockets on loopback, against a real engine on a real database
file: retries one after the other, at once from two connections, and after
the server restarted on the same file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import trio
from gateway_kit import TOKEN, Client, Message, Server, make_chat, open_server
from trio_websocket import open_websocket_url

import protocol as p
from store import Store
from tests.support.card_files import v1_card
from web import run_forwarded


def _same(first: Message, again: Message) -> None:
    """The same answer, each with its own ``reply_to``."""
    assert first["reply_to"] != again["reply_to"]
    assert {k: v for k, v in first.items() if k != "reply_to"} == {
        k: v for k, v in again.items() if k != "reply_to"
    }


async def _count(server: Server, kind: str | None = None) -> int:
    def count(s: Store) -> int:
        if kind is None:
            return s.event_count()
        rows = s.conn.execute("SELECT count(*) FROM event_log WHERE kind = ?", (kind,))
        return int(rows.fetchall()[0][0])

    return await server.engine.store.run(count)


async def _both(server: Server, type: str, **fields: Any) -> tuple[Message, Message]:
    """The same command sent at once from two connections; both answers."""
    answers: list[Message] = []
    async with (
        open_websocket_url(server.url) as one,
        open_websocket_url(server.url) as two,
        trio.open_nursery() as nursery,
    ):
        for number, ws in enumerate((one, two)):
            client = Client(ws)
            client.count = 100 * number  # ids of its own: m1, and m101

            async def ask(client: Client = client) -> None:
                answers.append(await client.ask(type, **fields))

            nursery.start_soon(ask)
    return answers[0], answers[1]


async def test_create_bot_and_create_chat_run_once(client: Client, server: Server) -> None:
    before = await _count(server)
    made = await client.ask("create_bot", name="Mira", persona="barkeep", command_id="b1")
    assert made["type"] == "bot" and made["bot"]["id"] == "mira"
    after = await _count(server)
    assert after == before + 1
    again = await client.ask("create_bot", name="Mira", persona="barkeep", command_id="b1")
    _same(made, again)
    assert await _count(server) == after, "the retry wrote nothing"
    other = await client.ask("create_bot", name="Mira", persona="barkeep", command_id="b2")
    assert other["bot"]["id"] == "mira-2", "another command_id is another command"

    chat = await client.ask("create_chat", host_bot_id="mira", command_id="c1")
    written = await _count(server)
    chat_again = await client.ask("create_chat", host_bot_id="mira", command_id="c1")
    _same(chat, chat_again)
    assert await _count(server) == written
    assert len((await client.ask("list_chats"))["chats"]) == 1


async def test_two_connections_at_once_write_once(server: Server) -> None:
    one, two = await _both(server, "create_bot", name="Tam", persona="smith", command_id="k")
    _same(one, two)
    assert await _count(server, "bot_created") == 1
    first, second = await _both(server, "create_chat", host_bot_id="tam", command_id="k")
    _same(first, second)  # the same id under the same (no) chat, but another type: see below
    assert first["type"] == "error" and first["code"] == "invalid"
    one, two = await _both(server, "create_chat", host_bot_id="tam", command_id="chat-k")
    _same(one, two)
    assert one["type"] == "chat"
    assert await _count(server, "chat_created") == 1


async def test_send_turn_runs_once(client: Client, server: Server) -> None:
    chat_id = await make_chat(client)
    await client.ask("open_chat", chat_id=chat_id)
    server.backend.push_narrative("Mira nods.")
    accepted = await client.ask("send_turn", chat_id=chat_id, prose="Hello.", command_id="t1")
    assert accepted["type"] == "accepted"
    await client.until("turn_settled")
    written = await _count(server)
    again = await client.ask("send_turn", chat_id=chat_id, prose="Hello.", command_id="t1")
    _same(accepted, again)
    assert await _count(server) == written
    assert not [m for m in client.backlog if m["type"] == "user_turn"], "no second turn"

    # At once from two connections: one turn, one answer.
    server.backend.push_narrative("Mira nods again.")
    one, two = await _both(server, "send_turn", chat_id=chat_id, prose="Hi.", command_id="t2")
    _same(one, two)
    assert one["type"] == "accepted" and one["user_turn_id"] != accepted["user_turn_id"]
    await client.until("turn_settled", lambda m: m["user_turn_id"] == one["user_turn_id"])
    assert await _count(server, "user_turn") == 2


async def test_a_refused_command_records_nothing(client: Client, server: Server) -> None:
    chat_id = await make_chat(client)
    await client.ask("open_chat", chat_id=chat_id)
    server.backend.push_narrative(text="A long tale of the sea", stall_after=2)
    await client.ask("send_turn", chat_id=chat_id, prose="Tell me", command_id="t1")
    await client.until("token")
    before = await _count(server)
    busy = await client.ask("send_turn", chat_id=chat_id, prose="Again", command_id="t2")
    assert busy["code"] == "busy"
    assert await _count(server) == before
    assert await server.engine.store.run(Store.command_record, chat_id, "t2") is None
    await client.ask("cancel", chat_id=chat_id)
    await client.until("turn_settled")
    server.backend.push_narrative("Now then.")
    later = await client.ask("send_turn", chat_id=chat_id, prose="Again", command_id="t2")
    assert later["type"] == "accepted", "the retry, once the chat is free, runs"
    await client.until("turn_settled", lambda m: m["user_turn_id"] == later["user_turn_id"])

    state = await client.ask("open_chat", chat_id=chat_id)
    user_turn = state["timeline"][0]["event_id"]
    refused = await client.ask("regenerate", chat_id=chat_id, event_id=user_turn, command_id="g1")
    assert refused["code"] in ("invalid", "not_found")
    assert await server.engine.store.run(Store.command_record, chat_id, "g1") is None


async def test_regenerate_world_event_and_rewind_run_once(client: Client, server: Server) -> None:
    chat_id = await make_chat(client)
    await client.ask("open_chat", chat_id=chat_id)
    server.backend.push_narrative("First answer.")
    sent = await client.ask("send_turn", chat_id=chat_id, prose="Tell me.")
    complete = await client.until("beat_complete")
    await client.until("turn_settled")

    server.backend.push_narrative("Second answer.")
    regenerated = await client.ask(
        "regenerate", chat_id=chat_id, event_id=complete["event_id"], command_id="g"
    )
    assert regenerated == {**regenerated, "type": "accepted", "user_turn_id": sent["user_turn_id"]}
    await client.until("turn_settled")
    written, asked = await _count(server), len(server.backend.requests)
    again = await client.ask(
        "regenerate", chat_id=chat_id, event_id=complete["event_id"], command_id="g"
    )
    _same(regenerated, again)
    assert await _count(server) == written and len(server.backend.requests) == asked

    planned = await client.ask(
        "create_world_event", chat_id=chat_id, title="A storm", command_id="w"
    )
    assert planned["type"] == "ok"
    _same(
        planned,
        await client.ask("create_world_event", chat_id=chat_id, title="A storm", command_id="w"),
    )
    assert await _count(server, "world_event_created") == 1

    rewound = await client.ask(
        "rewind", chat_id=chat_id, event_id=sent["user_turn_id"], command_id="r"
    )
    assert rewound["type"] == "rewound"
    await client.until("chat_state")
    server.backend.push_narrative("A new answer.")
    await client.ask("send_turn", chat_id=chat_id, prose="Something else.")
    await client.until("turn_settled")
    # A late retry of the rewind answers as the rewind did and does not undo the new turn.
    _same(
        rewound,
        await client.ask("rewind", chat_id=chat_id, event_id=sent["user_turn_id"], command_id="r"),
    )
    assert await _count(server, "chat_rewound") == 1
    state = await client.ask("open_chat", chat_id=chat_id)
    assert "Something else." in [t["text"] for t in state["timeline"]]


async def test_bad_command_ids_are_invalid_and_write_nothing(
    client: Client, server: Server
) -> None:
    before = await _count(server)
    for bad in ("x" * 65, "", 5, ["k"]):
        answer = await client.ask("create_bot", name="Mira", persona="barkeep", command_id=bad)
        assert answer["type"] == "error" and answer["code"] == "invalid", bad
        assert answer["reply_to"] is not None
    assert await _count(server) == before
    ok = await client.ask("create_bot", name="Mira", persona="barkeep", command_id="x" * 64)
    assert ok["type"] == "bot"


async def test_an_id_used_for_another_command_is_invalid(client: Client, server: Server) -> None:
    await client.ask("create_bot", name="Mira", persona="barkeep", command_id="k")
    before = await _count(server)
    other = await client.ask("create_persona", name="Ana", persona="sailor", command_id="k")
    assert other["code"] == "invalid" and "create_bot" in other["message"]
    assert await _count(server) == before


async def test_a_command_without_writes_ignores_its_id(client: Client) -> None:
    one = await client.ask("list_bots", command_id="k")
    two = await client.ask("list_bots", command_id="k")
    _same(one, two)


async def test_a_retry_after_a_restart_gets_the_first_answer(tmp_path: Path) -> None:
    async with (
        open_server(tmp_path, rate=1000, burst=1000) as server,
        open_websocket_url(server.url) as ws,
    ):
        client = Client(ws)
        made = await client.ask("create_bot", name="Mira", persona="barkeep", command_id="b")
        chat = await client.ask("create_chat", host_bot_id="mira", command_id="c")
        chat_id = chat["chat"]["id"]
        await client.ask("open_chat", chat_id=chat_id)
        server.backend.push_narrative("Mira nods.")
        sent = await client.ask("send_turn", chat_id=chat_id, prose="Hi.", command_id="t")
        await client.until("turn_settled")
        written = await _count(server)

    async with (
        open_server(tmp_path, rate=1000, burst=1000) as server,
        open_websocket_url(server.url) as ws,
    ):
        client = Client(ws)
        client.count = 100  # ids of its own
        _same(made, await client.ask("create_bot", name="Mira", persona="x", command_id="b"))
        _same(chat, await client.ask("create_chat", host_bot_id="mira", command_id="c"))
        _same(sent, await client.ask("send_turn", chat_id=chat_id, prose="Hi.", command_id="t"))
        assert await _count(server) == written


async def test_a_lost_answer_is_rebuilt_from_the_first_event(tmp_path: Path) -> None:
    async with (
        open_server(tmp_path, rate=1000, burst=1000) as server,
        open_websocket_url(server.url) as ws,
    ):
        client = Client(ws)
        made = await client.ask("create_bot", name="Mira", persona="barkeep", command_id="b")
        chat = await client.ask("create_chat", host_bot_id="mira", command_id="c")
        chat_id = chat["chat"]["id"]
        await client.ask("open_chat", chat_id=chat_id)
        server.backend.push_narrative("Mira nods.")
        sent = await client.ask("send_turn", chat_id=chat_id, prose="Hi.", command_id="t")
        await client.until("turn_settled")
        # As a crash between a command's write and its answer would leave them.
        await server.engine.store.run(
            lambda s: s.conn.execute("UPDATE commands SET answer = NULL")
        )
        written = await _count(server)
        _same(made, await client.ask("create_bot", name="Mira", persona="x", command_id="b"))
        # Rebuilt, the chat is shown as it is now (you have spoken there since): the same chat.
        again = await client.ask("create_chat", host_bot_id="mira", command_id="c")
        assert again["type"] == "chat" and again["chat"]["id"] == chat_id
        _same(sent, await client.ask("send_turn", chat_id=chat_id, prose="Hi.", command_id="t"))
        assert await _count(server) == written
        rows = await server.engine.store.run(
            lambda s: s.conn.execute(
                "SELECT count(*) FROM commands WHERE answer IS NULL"
            ).fetchall()
        )
        assert rows == [(0,)], "each rebuilt answer is kept"


async def test_a_forwarded_command_keeps_its_id(tmp_path: Path) -> None:
    """A command a node forwards to its chat's owner runs there once per command_id."""
    async with open_server(tmp_path, rate=1000, burst=1000) as server:
        engine = server.engine
        mira = await engine.create_bot("Mira", "barkeep", "")
        chat = await engine.create_chat(mira.id, None, "The Eel")
        message = p.CreateWorldEvent(chat.id, "A storm", "")
        sent = p.decode_client(p.encode_client(message, "1", command_id="w"))
        assert sent.command_id == "w"
        first = await run_forwarded(engine, sent, p.YOU_ID)
        again = await run_forwarded(engine, sent, p.YOU_ID)
        assert first == again
        assert await _count(server, "world_event_created") == 1


async def test_an_import_with_a_command_id_runs_once(server: Server) -> None:
    card = json.dumps(v1_card()).encode()
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{server.port}",
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=30,
    ) as http:
        first = await http.post("/api/import", content=card, params={"command_id": "i1"})
        assert first.status_code == 200, first.text
        written = await _count(server)
        again = await http.post("/api/import", content=card, params={"command_id": "i1"})
        assert (again.status_code, again.json()) == (200, first.json())
        assert await _count(server) == written
        other = await http.post("/api/import", content=card, params={"command_id": "i2"})
        assert other.json()["bot"]["id"] != first.json()["bot"]["id"]
        bad = await http.post("/api/import", content=card, params={"command_id": "x" * 65})
        assert (bad.status_code, bad.json()["error"]) == (400, "invalid")
        broken = await http.post("/api/import", content=b"not a card", params={"command_id": "i3"})
        assert broken.status_code == 400
        assert await server.engine.store.run(Store.command_record, "", "i3") is None


async def test_regenerate_world_event_and_rewind_at_once(client: Client, server: Server) -> None:
    chat_id = await make_chat(client)
    await client.ask("open_chat", chat_id=chat_id)
    server.backend.push_narrative("First answer.")
    sent = await client.ask("send_turn", chat_id=chat_id, prose="Tell me.")
    complete = await client.until("beat_complete")
    await client.until("turn_settled")

    server.backend.push_narrative("Second answer.")
    beat = complete["event_id"]
    one, two = await _both(server, "regenerate", chat_id=chat_id, event_id=beat, command_id="g")
    _same(one, two)
    assert one["type"] == "accepted"
    await client.until("turn_settled")
    assert await _count(server, "branch_forked") == 1

    one, two = await _both(
        server, "create_world_event", chat_id=chat_id, title="Storm", command_id="w"
    )
    _same(one, two)
    assert await _count(server, "world_event_created") == 1

    turn = sent["user_turn_id"]
    one, two = await _both(server, "rewind", chat_id=chat_id, event_id=turn, command_id="r")
    _same(one, two)
    assert one["type"] == "rewound"
    assert await _count(server, "chat_rewound") == 1
