"""Long chats open flat: ``chat_state`` holds the latest turns, ``load_older`` pages back."""

from __future__ import annotations

from gateway_kit import Client, Server

from protocol import LATEST_TURNS, MAX_OLDER_TURNS
from tests.support.long_chat import fill_chat


async def long_chat(server: Server, client: Client, turns: int) -> str:
    mira = (await client.ask("create_bot", name="Mira", persona="barkeep"))["bot"]["id"]
    chat_id = str((await client.ask("create_chat", host_bot_id=mira))["chat"]["id"])
    await server.engine.store.run(lambda s: fill_chat(s, chat_id, mira, turns))
    return chat_id


async def test_a_long_chat_opens_with_its_latest_turns_and_pages_back_to_the_first(
    server: Server, client: Client
) -> None:
    chat_id = await long_chat(server, client, 450)
    everything = await server.engine.store.run(lambda s: s.timeline(chat_id))
    state = await client.ask("open_chat", chat_id=chat_id)
    assert state["has_older"] is True
    assert len(state["timeline"]) == LATEST_TURNS
    assert [t["event_id"] for t in state["timeline"]] == [
        t.event_id for t in everything[-LATEST_TURNS:]
    ]

    pages = [state["timeline"]]
    has_older = True
    while has_older:  # bounded: every page is older than the one before
        before = pages[0][0]["event_id"]
        older = await client.ask(
            "load_older", chat_id=chat_id, before_event_id=before, limit=MAX_OLDER_TURNS
        )
        assert older["type"] == "older_turns" and older["chat_id"] == chat_id
        assert older["before_event_id"] == before
        assert older["turns"] and all(t["event_id"] < before for t in older["turns"])
        pages.insert(0, older["turns"])
        has_older = older["has_older"]
        assert len(pages) <= 4
    assert [len(page) for page in pages] == [150, 200, 100]
    assert [t["event_id"] for page in pages for t in page] == [t.event_id for t in everything]
    assert pages[1][0]["text"] == everything[150].text


async def test_a_short_chat_has_no_older_turns_and_says_nothing_of_them(
    server: Server, client: Client
) -> None:
    chat_id = await long_chat(server, client, 6)
    state = await client.ask("open_chat", chat_id=chat_id)
    assert "has_older" not in state and len(state["timeline"]) == 6
    first = state["timeline"][0]["event_id"]
    older = await client.ask("load_older", chat_id=chat_id, before_event_id=first, limit=1)
    assert (older["turns"], older["has_older"]) == ([], False)
    # `limit` may be left out: as many as chat_state carries.
    last = state["timeline"][-1]["event_id"]
    page = await client.ask("load_older", chat_id=chat_id, before_event_id=last)
    assert [t["event_id"] for t in page["turns"]] == [
        t["event_id"] for t in state["timeline"][:-1]
    ]


async def test_bad_load_older_requests_are_refused(server: Server, client: Client) -> None:
    chat_id = await long_chat(server, client, 20)
    other = await long_chat(server, client, 4)
    theirs = (await server.engine.store.run(lambda s: s.timeline(other)))[-1].event_id
    ours = (await server.engine.store.run(lambda s: s.timeline(chat_id)))[-1].event_id
    before = await server.event_count()
    cases = [
        ({"chat_id": chat_id, "before_event_id": ours, "limit": 0}, "invalid"),
        ({"chat_id": chat_id, "before_event_id": ours, "limit": MAX_OLDER_TURNS + 1}, "invalid"),
        ({"chat_id": chat_id, "before_event_id": theirs, "limit": 10}, "not_found"),
        ({"chat_id": chat_id, "before_event_id": 10**9, "limit": 10}, "not_found"),
        ({"chat_id": "c404", "before_event_id": ours, "limit": 10}, "not_found"),
        ({"chat_id": chat_id, "before_event_id": 0, "limit": 10}, "bad_message"),
        ({"chat_id": chat_id, "limit": 10}, "bad_message"),
    ]
    for fields, code in cases:
        answer = await client.ask("load_older", **fields)
        assert (answer["type"], answer["code"]) == ("error", code), (fields, answer)
        assert answer["message"]
    assert await server.event_count() == before
