"""The per-chat message journal: seq per chat, resume after a seq, pruning."""

from __future__ import annotations

import pytest
from storeworld import Where, add_chat, open_store, said

from protocol import ChatState, Token, TurnSettled, UserTurn
from protocol import events as ev
from store import Store


def test_each_chat_counts_its_own_messages_from_one(store: Store, world: dict[str, str]) -> None:
    chat = world["chat"]
    other, _ = add_chat(store, world["tam"])
    stamped = store.record([TurnSettled(chat, 1), TurnSettled(other, 2), TurnSettled(chat, 3)])
    assert [(m.chat_id, m.seq) for m in stamped] == [(chat, 1), (other, 1), (chat, 2)]  # type: ignore[union-attr]
    assert (store.last_seq(chat), store.last_seq(other), store.last_seq("c99")) == (2, 1, 0)


def test_messages_after_replays_the_wire_json(store: Store, world: dict[str, str]) -> None:
    chat = world["chat"]
    result = store.append(
        ev.UserTurn(chat, '"Hi," I say.', said("Hi")),
        render=lambda ids: [UserTurn(chat, ids[0], '"Hi," I say.', said("Hi"))],
    )
    store.record([TurnSettled(chat, result.ids[0])])
    replay = store.messages_after(chat, 0)
    assert replay == [
        {
            "type": "user_turn",
            "chat_id": chat,
            "event_id": result.ids[0],
            "prose": '"Hi," I say.',
            "segments": [{"kind": "narration", "text": "Hi"}],
            "seq": 1,
        },
        {"type": "turn_settled", "chat_id": chat, "user_turn_id": result.ids[0], "seq": 2},
    ]
    assert store.messages_after(chat, 1) == replay[1:]
    assert store.messages_after(chat, 2) == []
    assert store.messages_after(chat, 3) is None, "ahead of the chat: start afresh"
    assert store.messages_after(chat, -1) is None


def test_a_refused_append_uses_no_seq(store: Store, world: dict[str, str]) -> None:
    chat = world["chat"]
    with pytest.raises(Exception, match="no chat"):
        store.append(
            ev.UserTurn("missing", "x", said("x")),
            render=lambda ids: [TurnSettled(chat, ids[0])],
        )
    (settled,) = store.record([TurnSettled(chat, 1)])
    assert settled.seq == 1  # type: ignore[union-attr]
    assert store.messages_after(chat, 0) == [
        {"type": "turn_settled", "chat_id": chat, "user_turn_id": 1, "seq": 1}
    ]


def test_tokens_and_chat_states_take_no_seq(store: Store, world: dict[str, str]) -> None:
    chat = world["chat"]
    with pytest.raises(TypeError):
        store.record([Token(chat, 1, "mira", 0, "Hi")])
    assert store.last_seq(chat) == 0
    state = ChatState(chat, store.get_chat(chat), (), (), None, None)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        store.record([state])


def test_old_messages_are_pruned_and_then_cannot_be_replayed(place: Where) -> None:
    store = open_store(place, keep_messages=300)
    try:
        store.append(ev.BotCreated("mira", "Mira", ""), ev.ChatCreated("c1", "T", "mira"))
        for n in range(1000):
            store.record([TurnSettled("c1", n)])
        ((lowest, count),) = store.conn.execute("SELECT min(seq), count(*) FROM outbox")
        assert isinstance(lowest, int) and isinstance(count, int)
        assert lowest > 1 and 300 <= count < 400, "bounded: the last 300, pruned in steps"
        assert store.messages_after("c1", 0) is None, "the start is gone"
        assert store.messages_after("c1", lowest - 2) is None
        tail = store.messages_after("c1", 1000 - 300)
        assert tail is not None and [m["seq"] for m in tail] == list(range(701, 1001))
    finally:
        store.close()


def test_the_default_journal_keeps_two_thousand_per_chat(store: Store) -> None:
    store.append(ev.BotCreated("mira", "Mira", ""), ev.ChatCreated("c1", "T", "mira"))
    store.record([TurnSettled("c1", n) for n in range(2200)])
    tail = store.messages_after("c1", 200)
    assert tail is not None and len(tail) == 2000
    assert store.messages_after("c1", 99) is None


def test_seq_survives_reopening(place: Where) -> None:
    store = open_store(place)
    store.append(ev.BotCreated("mira", "Mira", ""), ev.ChatCreated("c1", "T", "mira"))
    store.record([TurnSettled("c1", 1), TurnSettled("c1", 2)])
    store.close()
    store = open_store(place)
    try:
        (message,) = store.record([TurnSettled("c1", 3)])
        assert message.seq == 3  # type: ignore[union-attr]
        replay = store.messages_after("c1", 1)
        assert replay is not None and [m["seq"] for m in replay] == [2, 3]
    finally:
        store.close()
