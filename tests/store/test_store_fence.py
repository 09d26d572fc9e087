"""The fence: asked inside every write's transaction, once per chat; a refusal keeps nothing."""

from __future__ import annotations

from typing import Any

import pytest
import trio
from storeworld import Where, dump_projections, open_store, said

from protocol import TurnSettled
from protocol import events as ev
from store import AsyncStore, Fenced, Store, take_seat


def everything(store: Store, chat_id: str) -> tuple[Any, ...]:
    return (
        store.event_count(),
        dump_projections(store),
        store.last_seq(chat_id),
        store.conn.execute("SELECT key, value FROM meta ORDER BY key").fetchall(),
    )


class Fence:
    """Lets through the chats it is told, and writes a mark in the transaction it is asked in."""

    def __init__(self, *ours: str) -> None:
        self.ours = set(ours)
        self.asked: list[str] = []

    def __call__(self, conn: Any, chat_id: str) -> None:
        self.asked.append(chat_id)
        conn.execute(
            "INSERT INTO meta(key, value) VALUES (?, 'asked') "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (f"fence {chat_id}",),
        )
        if chat_id not in self.ours:
            raise Fenced(chat_id, "the shard moved")


def test_a_refusing_fence_leaves_nothing_written(store: Store, world: dict[str, str]) -> None:
    chat = world["chat"]
    before = everything(store, chat)
    store.fence = fence = Fence()
    with pytest.raises(Fenced) as caught:
        store.append(
            ev.UserTurn(chat, "Hi.", said("Hi.")),
            render=lambda ids: [TurnSettled(chat, ids[0])],
        )
    assert caught.value.chat_id == chat and caught.value.code == "unavailable"
    with pytest.raises(Fenced):
        store.record([TurnSettled(chat, 1)])  # a chat message alone is fenced too
    assert fence.asked == [chat, chat]
    assert everything(store, chat) == before, "not even what the fence wrote is kept"


def test_the_fence_is_asked_once_per_chat_of_a_transaction(
    store: Store, world: dict[str, str]
) -> None:
    chat = world["chat"]
    other = store.new_chat_id()
    store.append(ev.ChatCreated(other, "Another", world["tam"]))
    store.fence = fence = Fence(chat, other)
    store.append(
        ev.UserTurn(chat, "Hi.", said("Hi.")),
        ev.UserTurn(other, "Yo.", said("Yo.")),
        ev.UserTurn(chat, "Again.", said("Again.")),
        render=lambda ids: [TurnSettled(chat, ids[0]), TurnSettled(other, ids[1])],
    )
    assert fence.asked == [chat, other]
    store.append(ev.BotCreated("ora", "Ora", ""))  # a world-wide event names no chat
    assert fence.asked == [chat, other]
    store.append(ev.PersonaCreated("ash", "Ash", ""))
    take_seat(store, ev.SeatTaken(chat, "ash"))  # a transaction of its own: asked again
    assert fence.asked == [chat, other, chat]


async def test_one_refused_chat_in_a_group_commit_fails_alone(place: Where) -> None:
    store = open_store(place)
    store.append(ev.BotCreated("mira", "Mira", ""))
    store.append(ev.ChatCreated("c1", "Ours", "mira"), ev.ChatCreated("c2", "Not", "mira"))
    store.fence = Fence("c1")
    astore = AsyncStore(store)
    outcomes: dict[str, object] = {}

    async def write(chat: str) -> None:
        try:
            outcomes[chat] = await astore.append(ev.UserTurn(chat, "Hi.", said("Hi.")))
        except Fenced as exc:
            outcomes[chat] = exc

    try:
        async with trio.open_nursery() as nursery:
            for chat in ("c1", "c2", "c1"):
                nursery.start_soon(write, chat)
    finally:
        await astore.aclose()
    assert isinstance(outcomes["c2"], Fenced)
    reopened = open_store(place)
    try:
        assert reopened.timeline("c2") == []
        assert [t.text for t in reopened.timeline("c1")] == ["Hi.", "Hi."]
    finally:
        reopened.close()
