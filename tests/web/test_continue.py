"""``continue`` over a real WebSocket: the latest beat goes on, its tokens append to the
same beat, a cancel keeps what arrived, and bad input is refused with nothing written."""

from __future__ import annotations

from itertools import pairwise

from gateway_kit import Client, Message, Server, make_chat
from trio_websocket import open_websocket_url


async def exchange(client: Client, server: Server, chat_id: str, prose: str, reply: str) -> None:
    server.backend.push_narrative(reply)
    await client.ask("send_turn", chat_id=chat_id, prose=prose)
    await client.turn()
    client.backlog.clear()


def tokens_of(messages: list[Message]) -> list[Message]:
    return [m for m in messages if m["type"] == "token"]


def first(messages: list[Message], kind: str) -> Message:
    return next(m for m in messages if m["type"] == kind)


async def test_continue_appends_to_the_same_beat_for_every_watcher(
    client: Client, server: Server
) -> None:
    chat_id = await make_chat(client)
    await client.ask("open_chat", chat_id=chat_id)
    await exchange(client, server, chat_id, '"The ferry?"', "Mira wipes the bar.")
    state = await client.ask("open_chat", chat_id=chat_id)
    user_id, beat = state["timeline"][0]["event_id"], state["timeline"][1]

    async with open_websocket_url(server.url) as ws:
        watcher = Client(ws)
        await watcher.ask("open_chat", chat_id=chat_id)
        server.backend.push_narrative("She looks up at last.")
        accepted = await client.ask("continue", chat_id=chat_id)
        assert accepted == {
            "type": "accepted",
            "chat_id": chat_id,
            "user_turn_id": user_id,
            "reply_to": accepted["reply_to"],
        }
        for who in (client, watcher):
            seen = await who.turn()
            started = first(seen, "beat_started")
            assert started["continues"] == beat["event_id"]
            assert started["offset"] == len("Mira wipes the bar.")
            assert started["speaker_id"] == "mira"
            tokens = tokens_of(seen)
            assert tokens and {t["beat_id"] for t in tokens} == {started["beat_id"]}
            assert tokens[0]["offset"] == started["offset"]
            for before, after in pairwise(tokens):
                assert after["offset"] == before["offset"] + len(before["text"])
            assert "".join(t["text"] for t in tokens) == " She looks up at last."
            complete = first(seen, "beat_complete")
            assert complete["beat_id"] == started["beat_id"]
            assert complete["event_id"] == beat["event_id"]
            assert complete["text"] == "Mira wipes the bar. She looks up at last."
            assert complete["truncated"] is False

    state = await client.ask("open_chat", chat_id=chat_id)
    assert [t["text"] for t in state["timeline"]] == [
        '"The ferry?"',
        "Mira wipes the bar. She looks up at last.",
    ]
    # The model was asked to go on from the beat's own words.
    asked = [r for r in server.backend.requests if getattr(r, "continues", None)]
    assert [r.continues for r in asked] == ["Mira wipes the bar."]


async def test_cancel_mid_continue_keeps_what_arrived(client: Client, server: Server) -> None:
    chat_id = await make_chat(client)
    await client.ask("open_chat", chat_id=chat_id)
    await exchange(client, server, chat_id, '"Well?"', "Mira sighs.")
    server.backend.push_narrative(
        text="Then she tells the tale of the drowned bell", stall_after=3
    )
    await client.ask("continue", chat_id=chat_id)
    seen: list[Message] = []
    # Two tokens' text, in one frame or two (a watcher that lags gets them merged);
    # bounded: recv fails after 10 s of silence.
    while len("".join(t["text"] for t in tokens_of(seen))) < len(" Then she"):
        seen.append(await client.recv())
    await client.ask("cancel", chat_id=chat_id)
    seen += await client.turn()
    complete = first(seen, "beat_complete")
    assert complete["truncated"] is True and complete["error"] == "cancelled"
    streamed = "".join(t["text"] for t in tokens_of(seen))
    assert streamed.startswith(" Then")
    assert complete["text"] == "Mira sighs." + streamed
    state = await client.ask("open_chat", chat_id=chat_id)
    assert state["timeline"][1]["text"] == complete["text"]
    assert state["timeline"][1]["truncated"] is True


async def test_continue_refuses_bad_input_and_writes_nothing(
    client: Client, server: Server
) -> None:
    empty = await make_chat(client)
    chat_id = await make_chat(client)
    await client.ask("open_chat", chat_id=chat_id)
    await exchange(client, server, chat_id, '"Hello."', "Hi.")
    await exchange(client, server, chat_id, '"Again."', "Hi again.")
    state = await client.ask("open_chat", chat_id=chat_id)
    second_user = state["timeline"][2]["event_id"]
    before = await server.event_count()
    for fields, code in (
        ({"chat_id": empty}, "not_found"),
        ({"chat_id": "nope"}, "not_found"),
    ):
        answer = await client.ask("continue", **fields)
        assert (answer["type"], answer["code"]) == ("error", code), answer
        assert answer["message"]
    assert await server.event_count() == before

    # A turn in flight: busy.
    server.backend.push_narrative(text="A long tale of the sea", stall_after=2)
    await client.ask("send_turn", chat_id=chat_id, prose="Tell me")
    await client.until("token")
    before = await server.event_count()
    answer = await client.ask("continue", chat_id=chat_id)
    assert (answer["type"], answer["code"]) == ("error", "busy"), answer
    assert await server.event_count() == before
    await client.ask("cancel", chat_id=chat_id)
    await client.until("turn_settled")

    # The person spoke last (a rewind left their line the latest): no beat to go on.
    assert (await client.ask("rewind", chat_id=chat_id, event_id=second_user))["type"] == "rewound"
    before = await server.event_count()
    answer = await client.ask("continue", chat_id=chat_id)
    assert (answer["type"], answer["code"]) == ("error", "invalid"), answer
    assert "person" in answer["message"]
    assert await server.event_count() == before
