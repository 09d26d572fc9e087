"""Muting and cast changes over real WebSockets: every watcher gets the chat as it is now."""

from __future__ import annotations

from gateway_kit import Client, Message, Server
from trio_websocket import open_websocket_url


async def cast_of_four(client: Client) -> tuple[str, list[str]]:
    ids = []
    for name in ("Mira", "Ada", "Tobin", "Wren"):
        ids.append(
            (await client.ask("create_bot", name=name, persona=f"{name} drinks here."))["bot"][
                "id"
            ]
        )
    chat = await client.ask("create_chat", cast=ids[:3])
    return str(chat["chat"]["id"]), ids


async def numbered(client: Client, count: int) -> list[Message]:
    """The next ``count`` numbered chat messages this connection receives."""
    seen: list[Message] = []
    while len(seen) < count:
        message = await client.recv()
        if "seq" in message and message["type"] != "chat_state":
            seen.append(message)
    return seen


async def test_every_cast_change_reaches_every_watcher_as_the_fresh_chat(
    server: Server, client: Client
) -> None:
    chat_id, (mira, ada, tobin, wren) = await cast_of_four(client)
    async with open_websocket_url(server.url) as ws:
        other = Client(ws)
        state = await other.ask("open_chat", chat_id=chat_id)
        assert state["chat"]["muted"] == []

        muted = await client.ask("mute", chat_id=chat_id, bot_id=ada)
        assert muted["type"] == "chat" and muted["chat"]["muted"] == [ada]
        await client.ask("add_to_cast", chat_id=chat_id, bot_id=wren)
        await client.ask("leave_scene", chat_id=chat_id, bot_id=tobin)
        await client.ask("remove_from_cast", chat_id=chat_id, bot_id=ada)
        await client.ask("enter_scene", chat_id=chat_id, bot_id=tobin)
        await client.ask("mute", chat_id=chat_id, bot_id=wren)
        await client.ask("unmute", chat_id=chat_id, bot_id=wren)

        told = await numbered(other, 11)
        assert [m["seq"] for m in told] == list(range(state["seq"] + 1, state["seq"] + 12))
        assert [m["type"] for m in told] == [
            "chat_note",  # mute: no presence moves
            *("presence", "chat_note"),  # add_to_cast
            *("presence", "chat_note"),  # leave_scene
            *("presence", "chat_note"),  # remove_from_cast
            *("presence", "chat_note"),  # enter_scene
            "chat_note",  # mute
            "chat_note",  # unmute
        ]
        chats = [m for m in told if m["type"] == "chat_note"]
        assert all(m["chat_id"] == chat_id and "reply_to" not in m for m in chats)
        assert [c["chat"]["muted"] for c in chats] == [[ada], [ada], [ada], [], [], [wren], []]
        assert [c["chat"]["present"] for c in chats][-1] == [mira, tobin, wren]
        assert chats[-1]["chat"]["cast"] == [mira, tobin, wren]
        # What the watcher was told is what anyone reads now.
        listed = await other.ask("list_chats")
        assert listed["chats"] == [chats[-1]["chat"]]

        # A connection that resumes is replayed the chat messages it missed.
        replay = await other.send("open_chat", chat_id=chat_id, after_seq=told[0]["seq"])
        assert (await other.answer(replay))["type"] == "ok"
        again = await numbered(other, 10)
        assert again == told[1:]


async def test_bad_mutes_are_refused_and_write_nothing(server: Server, client: Client) -> None:
    chat_id, (_mira, ada, _tobin, wren) = await cast_of_four(client)
    before = await server.event_count()
    cases = [
        ({"chat_id": chat_id, "bot_id": "nobody"}, "mute", "not_found"),
        ({"chat_id": "c99", "bot_id": ada}, "mute", "not_found"),
        ({"chat_id": chat_id, "bot_id": wren}, "mute", "invalid"),  # not in the cast
        ({"chat_id": chat_id, "bot_id": ada}, "unmute", "invalid"),  # not muted
        ({"chat_id": chat_id}, "mute", "bad_message"),
    ]
    for fields, kind, code in cases:
        answer = await client.ask(kind, **fields)
        assert (answer["type"], answer["code"]) == ("error", code), (kind, fields, answer)
        assert answer["message"]
    assert await server.event_count() == before
    await client.ask("mute", chat_id=chat_id, bot_id=ada)
    twice = await client.ask("mute", chat_id=chat_id, bot_id=ada)
    assert (twice["code"], twice["message"]) == (
        "invalid",
        f"{ada!r} is already muted in chat {chat_id}",
    )
    assert await server.event_count() == before + 1


async def test_a_muted_character_named_stays_silent_unless_reply_as_forces_it(
    server: Server, client: Client
) -> None:
    chat_id, (mira, ada, _tobin, _wren) = await cast_of_four(client)
    await client.ask("open_chat", chat_id=chat_id)
    await client.ask("mute", chat_id=chat_id, bot_id=ada)
    server.backend.push_narrative("Mira answers for her.")
    server.backend.push_classifier("interjection", {"ranking": ["Ada"], "reason": ""})
    await client.ask("send_turn", chat_id=chat_id, prose='"Ada, any maps of the north?"')
    beats = [m for m in await client.turn() if m["type"] == "beat_started"]
    assert [b["speaker_id"] for b in beats] == [mira]  # not her, not even as an interjection

    server.backend.push_narrative("Ada sighs and unrolls a map.")
    server.backend.push_classifier("interjection", {"ranking": [], "reason": ""})
    await client.ask("send_turn", chat_id=chat_id, prose='"Mira, a drink?"', reply_as=ada)
    beats = [m for m in await client.turn() if m["type"] == "beat_started"]
    assert [b["speaker_id"] for b in beats] == [ada]
