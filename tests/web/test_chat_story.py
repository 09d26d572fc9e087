"""A chat is its own story, over a real WebSocket: nothing of one chat reaches another's
prompts or panels unless ``create_chat`` carries it over with ``continue_from``."""

from __future__ import annotations

import json

from gateway_kit import Client, Server

from llm import NarrativeRequest

SECRET = "marigold"


def mentions(server: Server, since: int, phrase: str) -> bool:
    """Whether any model request made since ``since`` holds the phrase in a message."""
    return any(
        phrase in message.content
        for request in server.backend.requests[since:]
        for message in request.messages
    )


async def tell_and_settle(client: Client, chat_id: str, prose: str) -> None:
    await client.ask("open_chat", chat_id=chat_id)
    await client.ask("send_turn", chat_id=chat_id, prose=prose)
    await client.turn()
    client.backlog.clear()


async def test_a_new_chat_knows_nothing_of_another_until_continue_from_carries_it(
    client: Client, server: Server
) -> None:
    mira = (await client.ask("create_bot", name="Mira", persona="barkeep"))["bot"]["id"]
    first = (await client.ask("create_chat", host_bot_id=mira))["chat"]["id"]
    server.backend.push_narrative("Mira nods once.")
    server.backend.push_classifier(
        "state_update",
        json={"edges": {"you": {"affinity_delta": 8, "knowledge_facts": [f"password {SECRET}"]}}},
        match="pair: mira -> ",
    )
    await tell_and_settle(client, first, f'"Mira, the password is {SECRET}."')
    await server.engine.idle()

    fresh = (await client.ask("create_chat", host_bot_id=mira))["chat"]["id"]
    assert (await client.ask("list_memories", bot_id=mira, chat_id=fresh))["memories"] == []
    state = await client.ask("open_chat", chat_id=fresh)
    edge = next(e for e in state["edges"] if (e["source_id"], e["target_id"]) == (mira, "you"))
    assert (edge["affinity"], edge["knowledge_facts"]) == (50, [])
    since = len(server.backend.requests)
    server.backend.push_narrative("What password?")
    await tell_and_settle(client, fresh, '"Mira, what was the password?"')
    await server.engine.idle()
    assert len(server.backend.requests) > since
    assert not mentions(server, since, SECRET)

    before = await server.event_count()
    chats = (await client.ask("list_chats"))["chats"]
    refused = await client.ask("create_chat", host_bot_id=mira, continue_from="c404")
    assert (refused["type"], refused["code"]) == ("error", "not_found")
    assert "c404" in refused["message"]
    assert await server.event_count() == before
    assert (await client.ask("list_chats"))["chats"] == chats

    carried = await client.ask("create_chat", host_bot_id=mira, continue_from=first)
    later = carried["chat"]["id"]
    memories = (await client.ask("list_memories", bot_id=mira, chat_id=later))["memories"]
    assert [m["chat_id"] for m in memories] == [later]
    assert SECRET in memories[0]["text"]
    state = await client.ask("open_chat", chat_id=later)
    edge = next(e for e in state["edges"] if (e["source_id"], e["target_id"]) == (mira, "you"))
    assert edge["affinity"] == 58 and any(SECRET in f for f in edge["knowledge_facts"])
    since = len(server.backend.requests)
    server.backend.push_narrative("Marigold, she whispers.")
    await tell_and_settle(client, later, '"Mira, what was the password?"')
    narrative = [r for r in server.backend.requests[since:] if isinstance(r, NarrativeRequest)]
    assert narrative and SECRET in json.dumps([m.content for m in narrative[0].messages])
