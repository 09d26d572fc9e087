"""Several people at one table over real WebSockets: two connections, two personas, a queue."""

from __future__ import annotations

import pytest
from gateway_kit import Client, Server
from trio_websocket import open_websocket_url


async def _tavern(client: Client) -> str:
    """Five characters at the Gilded Eel; returns the chat id."""
    ids = []
    for name in ("Mira", "Tobin", "Ada", "Wren", "Oss"):
        ids.append(
            (await client.ask("create_bot", name=name, persona=f"{name} drinks."))["bot"]["id"]
        )
    chat = await client.ask("create_chat", cast=ids, location="The Gilded Eel")
    return str(chat["chat"]["id"])


async def _persona(client: Client, name: str) -> str:
    answer = await client.ask("create_persona", name=name, persona=f"{name} plays.")
    assert answer["type"] == "persona" and answer["persona"]["name"] == name
    return str(answer["persona"]["id"])


async def test_two_people_queue_turns_that_stream_to_both(server: Server, client: Client) -> None:
    chat_id = await _tavern(client)
    bea = await _persona(client, "Bea")
    cal = await _persona(client, "Cal")
    personas = await client.ask("list_personas")
    assert [p["id"] for p in personas["personas"]] == ["you", bea, cal]
    await client.ask("open_chat", chat_id=chat_id)
    seated = await client.ask("take_seat", chat_id=chat_id, persona_id=bea)
    assert seated == {
        "type": "persona",
        "reply_to": seated["reply_to"],
        "persona": seated["persona"],
    }
    server.backend.push_narrative(text="Mira begins a tale of the old harbour", stall_after=3)
    server.backend.push_narrative("Tobin rattles his dice.")
    async with open_websocket_url(server.url) as ws:
        other = Client(ws)
        await other.ask("open_chat", chat_id=chat_id)
        await other.ask("take_seat", chat_id=chat_id, persona_id=cal)
        taken = await client.until("seat_taken", lambda m: m["persona"]["id"] == cal)
        assert taken["chat_id"] == chat_id
        accepted = await client.ask("send_turn", chat_id=chat_id, prose='"Mira, a tale!"')
        assert accepted["type"] == "accepted"
        await other.until("token")
        busy = await other.ask("send_turn", chat_id=chat_id, prose='"Tobin, dice?"')
        assert busy["type"] == "error" and busy["code"] == "busy"
        queued = await other.ask("send_turn", chat_id=chat_id, prose='"Tobin, dice?"', queue=True)
        assert (queued["type"], queued["position"]) == ("queued", 1)
        for watcher in (client, other):
            told = await watcher.until("turn_queued")
            assert [(q["persona_id"], q["prose"]) for q in told["queue"]] == [
                (cal, '"Tobin, dice?"')
            ]
        await client.ask("cancel", chat_id=chat_id)
        for watcher in (client, other):
            seen = await watcher.turn()  # the first turn, cut short
            seen += await watcher.turn()  # Cal's, which waited
            users = [m for m in seen if m["type"] == "user_turn"]
            assert [(u.get("speaker_id", "you"), u["prose"]) for u in users] == [
                (cal, '"Tobin, dice?"')
            ]
            texts = [m["text"] for m in seen if m["type"] == "beat_complete"]
            assert texts == ["Mira begins a", "Tobin rattles his dice."]
            assert [m["queue"] for m in seen if m["type"] == "turn_queued"] == [[]]
    state = await client.ask("open_chat", chat_id=chat_id)
    speakers = [t["speaker_id"] for t in state["timeline"] if t["kind"] == "user"]
    assert speakers == [bea, cal]
    assert state["chat"]["people"] == [bea, cal]
    assert "queue" not in state  # empty: left out, as before


async def test_a_full_queue_is_busy_and_cancel_queued_drops_only_ones_own(
    server: Server, client: Client
) -> None:
    chat_id = await _tavern(client)
    bea = await _persona(client, "Bea")
    cal = await _persona(client, "Cal")
    await client.ask("open_chat", chat_id=chat_id)
    await client.ask("take_seat", chat_id=chat_id, persona_id=bea)
    server.backend.push_narrative(text="One two three four five", stall_after=2)
    server.backend.push_narrative("Mira hears Cal.")
    async with open_websocket_url(server.url) as ws:
        other = Client(ws)
        await other.ask("take_seat", chat_id=chat_id, persona_id=cal)
        await client.ask("send_turn", chat_id=chat_id, prose="Hello")
        await client.until("token")
        order = [(client, "Bea 1"), (other, "Cal 1"), (client, "Bea 2"), (client, "Bea 3")]
        for n, (sender, prose) in enumerate(order, start=1):
            answer = await sender.ask("send_turn", chat_id=chat_id, prose=prose, queue=True)
            assert (answer["type"], answer["position"]) == ("queued", n)
        before = await server.event_count()
        full = await other.ask("send_turn", chat_id=chat_id, prose="Cal 2", queue=True)
        assert (full["type"], full["code"]) == ("error", "busy")
        assert await server.event_count() == before
        assert (await client.ask("cancel", chat_id=chat_id, queued=True))["type"] == "ok"
        # The queue filled as [Bea], [Bea, Cal], ...; only the drop leaves Cal's alone.
        alone = [{"queue_id": 2, "persona_id": cal, "prose": "Cal 1", "reply_as": None}]
        told = await client.until("turn_queued", lambda m: m["queue"] == alone)
        assert told["chat_id"] == chat_id
        seen = await client.turn()
        seen += await client.turn()
    users = [m["prose"] for m in seen if m["type"] == "user_turn"]
    assert users == ["Cal 1"]


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"persona_id": "nobody"}, "not_found"),
        ({"chat_id": "c404"}, "not_found"),
    ],
)
async def test_a_bad_seat_is_refused_and_writes_nothing(
    server: Server, client: Client, fields: dict[str, str], code: str
) -> None:
    chat_id = await _tavern(client)
    bea = await _persona(client, "Bea")
    before = await server.event_count()
    answer = await client.ask("take_seat", **{"chat_id": chat_id, "persona_id": bea, **fields})
    assert (answer["type"], answer["code"]) == ("error", code)
    assert await server.event_count() == before
    # The refused seat left the connection as it was: its turns are still `you`'s.
    server.backend.push_narrative("Mira nods.")
    await client.ask("open_chat", chat_id=chat_id)
    await client.ask("send_turn", chat_id=chat_id, prose="Hi")
    user = await client.until("user_turn")
    assert "speaker_id" not in user


async def test_update_persona_and_a_blank_name_is_refused(client: Client) -> None:
    bea = await _persona(client, "Bea")
    changed = await client.ask("update_persona", persona_id=bea, persona="A retired smuggler.")
    assert changed["persona"] == {"id": bea, "name": "Bea", "persona": "A retired smuggler."}
    blank = await client.ask("create_persona", name=" ", persona="")
    assert blank["type"] == "error" and blank["code"] == "bad_message"
    missing = await client.ask("update_persona", persona_id="nobody", name="X")
    assert (missing["type"], missing["code"]) == ("error", "not_found")
