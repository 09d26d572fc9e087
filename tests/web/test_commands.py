"""Every client command over a real WebSocket, answered as docs/protocol.md says."""

from __future__ import annotations

from gateway_kit import Client, Server, make_chat, seq_messages
from trio_websocket import open_websocket_url


async def test_hello_you_and_bots(client: Client) -> None:
    welcome = await client.ask("hello", protocol=1)
    assert welcome == {
        "type": "welcome",
        "protocol": 1,
        "server": welcome["server"],
        "you": {"id": "you", "name": welcome["you"]["name"], "persona": welcome["you"]["persona"]},
        "reply_to": "m1",
    }
    assert isinstance(welcome["server"], str) and welcome["server"]
    you = await client.ask("set_you", name="Ana", persona="a sailor")
    assert you == {
        "type": "you",
        "you": {"id": "you", "name": "Ana", "persona": "a sailor"},
        "reply_to": "m2",
    }
    assert (await client.ask("hello", protocol=1))["you"]["name"] == "Ana"
    made = await client.ask("create_bot", name="Mira", persona="barkeep", greeting="Hi.")
    bot = {"id": "mira", "name": "Mira", "persona": "barkeep", "greeting": "Hi."}
    assert made == {"type": "bot", "bot": bot, "reply_to": "m4"}
    updated = await client.ask("update_bot", bot_id="mira", persona="gruff barkeep")
    assert updated["bot"] == {**bot, "persona": "gruff barkeep"}
    assert (await client.ask("list_bots"))["bots"] == [updated["bot"]]
    other = (await client.ask("create_bot", name="Tobias", persona="lamplighter"))["bot"]
    assert other["greeting"] == ""
    assert await client.ask("delete_bot", bot_id=other["id"]) == {"type": "ok", "reply_to": "m8"}
    assert [b["id"] for b in (await client.ask("list_bots"))["bots"]] == ["mira"]


async def test_chats_are_created_listed_opened_and_closed(client: Client) -> None:
    await client.ask("create_bot", name="Mira", persona="barkeep", greeting="Rain's coming.")
    await client.ask("create_bot", name="Tobias", persona="lamplighter")
    made = await client.ask(
        "create_chat", host_bot_id="mira", guest_bot_id="tobias", location="The Eel", title="Eel"
    )
    chat = made["chat"]
    assert made["type"] == "chat" and made["reply_to"] == "m3"
    assert {k: chat[k] for k in ("title", "host_bot_id", "guest_bot_id", "location")} == {
        "title": "Eel",
        "host_bot_id": "mira",
        "guest_bot_id": "tobias",
        "location": "The Eel",
    }
    assert set(chat) == {
        *("id", "title", "host_bot_id", "guest_bot_id", "location", "created_at"),
        *("cast", "present", "muted"),  # additions: the cast, who is in the scene, muted
    }
    assert chat["cast"] == chat["present"] == ["mira", "tobias"] and chat["muted"] == []
    assert (await client.ask("list_chats"))["chats"] == [chat]
    state = await client.ask("open_chat", chat_id=chat["id"])
    assert state["type"] == "chat_state" and state["reply_to"] == "m5"
    assert state["chat"] == chat and state["chat_id"] == chat["id"]
    assert state["in_flight"] is None and isinstance(state["seq"], int)
    greeting = state["timeline"][0]
    assert greeting["kind"] == "assistant" and greeting["text"] == "Rain's coming."
    assert set(greeting) == {
        "event_id",
        "kind",
        "speaker_id",
        "text",
        "truncated",
        "interjection_of",
        "user_turn_id",
    }
    pairs = {(e["source_id"], e["target_id"]) for e in state["edges"]}
    assert ("you", "mira") in pairs and ("mira", "tobias") in pairs
    assert state["scene"]["location"] == "The Eel"
    assert await client.ask("close_chat", chat_id=chat["id"]) == {"type": "ok", "reply_to": "m6"}
    # Closed: the chat's live messages no longer come to this connection.
    await client.ask("create_world_event", chat_id=chat["id"], title="A quiet night")
    assert (await client.ask("list_bots"))["type"] == "bots"
    assert not [m for m in client.backlog if m.get("chat_id") == chat["id"]]


async def test_a_turn_streams_in_seq_order_and_the_text_adds_up(
    client: Client, server: Server
) -> None:
    chat_id = await make_chat(client)
    state = await client.ask("open_chat", chat_id=chat_id)
    server.backend.push_narrative('Mira squints at the key. "Where did you get that?"')
    server.backend.push_classifier("significance", 3)
    accepted = await client.ask("send_turn", chat_id=chat_id, prose='"Recognise this?"')
    assert accepted["type"] == "accepted" and accepted["chat_id"] == chat_id
    seen = client.backlog + await client.turn()
    client.backlog.clear()
    numbered = seq_messages(seen)
    assert [m["seq"] for m in numbered] == list(
        range(state["seq"] + 1, state["seq"] + 1 + len(numbered))
    )
    kinds = [m["type"] for m in numbered]
    assert kinds[:2] == ["user_turn", "beat_started"] and kinds[-1] == "turn_settled"
    user_turn = numbered[0]
    assert user_turn["event_id"] == accepted["user_turn_id"]
    assert user_turn["segments"] == [{"kind": "dialogue", "text": "Recognise this?"}]
    started, complete = numbered[1], next(m for m in numbered if m["type"] == "beat_complete")
    assert started["speaker_id"] == "mira" and started["interjection"] is False
    tokens = [m for m in seen if m["type"] == "token"]
    assert tokens and all("seq" not in t and t["beat_id"] == started["beat_id"] for t in tokens)
    offset = 0
    for token in tokens:
        assert token["offset"] == offset
        offset += len(token["text"])
    text = "".join(t["text"] for t in tokens)
    assert text == complete["text"] == 'Mira squints at the key. "Where did you get that?"'
    assert complete["truncated"] is False and complete["error"] is None
    assert "edge_update" in kinds and "memory" in kinds
    edge = next(m for m in numbered if m["type"] == "edge_update")
    assert set(edge) >= {"source_id", "target_id", "affinity", "trust", "affinity_delta"}


async def test_cancel_regenerate_rewind_and_the_preview(client: Client, server: Server) -> None:
    chat_id = await make_chat(client)
    await client.ask("open_chat", chat_id=chat_id)
    assert (await client.ask("cancel", chat_id=chat_id))["type"] == "ok"  # nothing in flight
    server.backend.push_narrative("A long tale of the sea", stall_after=2)
    await client.ask("send_turn", chat_id=chat_id, prose="Tell me")
    await client.until("token")
    assert await client.ask("cancel", chat_id=chat_id) == {"type": "ok", "reply_to": "m6"}
    complete = await client.until("beat_complete")
    assert complete["truncated"] is True and complete["error"] == "cancelled"
    await client.until("turn_settled")
    server.backend.push_narrative("A short one.")
    again = await client.ask("regenerate", chat_id=chat_id, event_id=complete["event_id"])
    assert again["type"] == "accepted" and again["chat_id"] == chat_id
    await client.until("turn_settled")
    state = await client.ask("open_chat", chat_id=chat_id)
    assert [t["text"] for t in state["timeline"]] == ["Tell me", "A short one."]
    user_turn = state["timeline"][0]["event_id"]
    preview = await client.ask("rewind_preview", chat_id=chat_id, event_id=user_turn)
    assert preview["type"] == "rewind_preview" and preview["event_id"] == user_turn
    assert preview["total_events"] > 0
    assert sum(preview["by_kind"].values()) == preview["total_events"]
    assert "assistant_turn" in preview["by_kind"]
    rewound = await client.ask("rewind", chat_id=chat_id, event_id=user_turn)
    assert rewound == {
        "type": "rewound",
        "chat_id": chat_id,
        "event_id": user_turn,
        "reply_to": rewound["reply_to"],
    }
    # The regenerate's own resync may still be on its way; the rewind's comes after it.
    fresh = await client.until("chat_state", lambda m: len(m["timeline"]) == 1)
    assert "reply_to" not in fresh
    assert [t["text"] for t in fresh["timeline"]] == ["Tell me"]


async def test_memories_are_listed_and_pinned(client: Client, server: Server) -> None:
    chat_id = await make_chat(client)
    await client.ask("open_chat", chat_id=chat_id)
    server.backend.push_narrative("Mira nods.")
    server.backend.push_classifier("significance", 1)
    await client.ask("send_turn", chat_id=chat_id, prose="Evening.")
    await client.turn()
    await server.engine.idle()
    memories = (await client.ask("list_memories", bot_id="mira", chat_id=chat_id))["memories"]
    assert len(memories) == 1
    memory = memories[0]
    assert set(memory) == {"id", "bot_id", "chat_id", "text", "significance", "pinned"}
    assert memory["bot_id"] == "mira" and memory["pinned"] is False
    pinned = await client.ask("pin_memory", memory_id=memory["id"], pinned=True)
    assert pinned["type"] == "memory" and pinned["memory"]["pinned"] is True
    assert "seq" not in pinned and pinned["reply_to"]
    everywhere = (await client.ask("list_memories", bot_id="mira"))["memories"]
    assert [m["pinned"] for m in everywhere] == [True]
    # Watchers of the chat hear about the pin too, as a numbered `memory`.
    note = await client.until("memory", lambda m: m["memory"]["pinned"] is True)
    assert isinstance(note["seq"], int)


async def test_world_events_are_an_addition(client: Client) -> None:
    chat_id = await make_chat(client)
    await client.ask("open_chat", chat_id=chat_id)
    artifacts = {"acquired_objects": [{"holder_id": "you", "name": "storm lantern"}]}
    made = await client.ask(
        "create_world_event", chat_id=chat_id, title="The storm", artifacts=artifacts
    )
    assert made == {"type": "ok", "reply_to": made["reply_to"]}
    event = await client.until("world_event")
    assert event["title"] == "The storm" and event["status"] == "planned"
    assert isinstance(event["event_id"], int) and isinstance(event["seq"], int)
    state = await client.ask("open_chat", chat_id=chat_id)
    assert [(e["title"], e["status"]) for e in state["world_events"]] == [("The storm", "planned")]


async def test_statistics_show_connections_and_their_queues(
    client: Client, server: Server
) -> None:
    chat_id = await make_chat(client)
    await client.ask("open_chat", chat_id=chat_id)
    async with open_websocket_url(server.url) as ws:
        other = Client(ws)
        answer = await other.ask("statistics")
        assert answer["type"] == "statistics" and answer["reply_to"] == "m1"
        figures = answer["statistics"]
        assert figures["connections"] == 2
        mine, theirs = figures["per_connection"]
        assert mine["watching"] == [chat_id] and theirs["watching"] == []
        for connection in (mine, theirs):
            assert connection["queue_depth"] >= 0
            assert connection["queue"]["capacity"] == server.gateway.settings.send_queue
        assert "engine" in figures and chat_id in figures["engine"]["chats"]
    assert (await client.ask("statistics"))["statistics"]["connections"] == 1


ACTOR = {
    "address",
    "state",
    "mailbox",
    "mailbox_max",
    "senders_waiting",
    "handled",
    "restarts",
    "activations",
    "work",
    "children",
}
SUBSCRIBER = {"depth", "max_buffer", "received", "merged", "lagged", "dropped"}


async def test_the_statistics_answer_is_plain_json_of_the_documented_shape(
    client: Client, server: Server
) -> None:
    chat_id = await make_chat(client)
    await client.ask("open_chat", chat_id=chat_id)
    server.backend.push_narrative("Mira nods.")
    await client.ask("send_turn", chat_id=chat_id, prose="Hello.")
    await client.until("turn_settled")
    figures = (await client.ask("statistics"))["statistics"]
    assert set(figures) == {
        "connections",
        "clients",
        "max_clients",
        "pending",
        "accepted",
        "refused",
        "per_connection",
        "engine",
    }
    (mine,) = figures["per_connection"]
    assert set(mine) == {
        "connection",
        "watching",
        "queue_depth",
        "queue",
        "received",
        "sent",
        "rate_limited",
    }
    assert mine["watching"] == [chat_id]
    assert set(mine["queue"]) == {"depth", "capacity", "queued", "merged", "high_water"}
    engine = figures["engine"]
    assert set(engine) == {"system", "chats", "classifier_pool", "narrative_backend"}
    assert set(engine["system"]) == {"actors", "registries"}
    assert set(engine["system"]["actors"][f"chat:{chat_id}"]) == ACTOR
    assert engine["system"]["actors"][f"chat:{chat_id}"]["address"] == f"chat:{chat_id}"
    assert set(engine["system"]["registries"]["chat"]) == {
        "active",
        "passivated",
        "activations",
        "passivations",
    }
    feed = engine["chats"][chat_id]
    assert set(feed) == {
        "published",
        "subscribers",
        "merged",
        "lagged",
        "dropped",
        "per_subscriber",
    }
    assert feed["subscribers"] == 1 and set(feed["per_subscriber"][0]) == SUBSCRIBER
    assert set(engine["narrative_backend"]) == {"requests", "served", "failed", "pending"}
    assert engine["narrative_backend"]["served"] >= 1


async def test_send_turn_reply_as_picks_the_speaker_and_an_unknown_bot_is_not_found(
    client: Client, server: Server
) -> None:
    chat_id = await make_chat(client, guest=True)
    state = await client.ask("open_chat", chat_id=chat_id)
    tobias = next(b for b in state["chat"]["cast"] if b != state["chat"]["host_bot_id"])
    refused = await client.ask("send_turn", chat_id=chat_id, prose='"Mira?"', reply_as="nobody")
    assert (refused["type"], refused["code"]) == ("error", "not_found")
    server.backend.push_narrative("Tobias answers for her.")
    await client.ask("send_turn", chat_id=chat_id, prose='"Mira?"', reply_as=tobias)
    seen = client.backlog + await client.turn()
    client.backlog.clear()
    started = next(m for m in seen if m["type"] == "beat_started")
    assert started["speaker_id"] == tobias
    users = [m for m in seen if m["type"] == "user_turn"]
    assert len(users) == 1  # the refused turn wrote nothing
