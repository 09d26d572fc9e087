"""Appending: ids, one transaction per call, and refusals that write nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from storeworld import Where, dump_projections, exchange, open_store, said

from protocol import Artifacts, MemoryNote, TurnSettled
from protocol import events as ev
from store import Invalid, NotFound, Store, StoreError
from store._tx import transaction


def test_ids_are_log_positions_and_the_payload_round_trips(store: Store) -> None:
    ids = store.append(ev.BotCreated("mira", "Mira", "A barkeep."), ev.YouUpdated("Ash", "")).ids
    assert ids[1] == ids[0] + 1
    stored = store.get_event(ids[0])
    assert stored is not None
    assert stored.kind == "bot_created"
    assert stored.chat_id is None
    assert stored.event == ev.BotCreated("mira", "Mira", "A barkeep.")
    assert stored.visible
    assert store.get_event(ids[1] + 1) is None


def test_chat_events_carry_their_chat_in_the_log(store: Store, world: dict[str, str]) -> None:
    user_id, _, _ = exchange(store, world["chat"], world["mira"], "Hello.", "Hi.")
    stored = store.get_event(user_id)
    assert stored is not None and stored.chat_id == world["chat"]


def test_the_user_is_seeded_in_a_fresh_database(store: Store) -> None:
    you = store.get_you()
    assert (you.id, you.name, you.persona) == ("you", "You", "")


def everything(store: Store) -> tuple[int, dict[str, Any], int]:
    return store.event_count(), dump_projections(store), store.last_seq("c1")


BAD = [
    # (why, events) — each is refused, and nothing of the call is kept
    ("unknown chat", [ev.UserTurn("nope", "Hi.", said("Hi."))]),
    ("prose is not text", [ev.UserTurn("c1", 42, said("42"))]),  # type: ignore[arg-type]
    ("host does not exist", [ev.ChatCreated("c9", "T", "ghost")]),
    ("guest does not exist", [ev.ChatCreated("c9", "T", "mira", "ghost")]),
    ("guest is the host", [ev.ChatCreated("c9", "T", "mira", "mira")]),
    ("chat id taken", [ev.ChatCreated("c1", "T", "mira")]),
    ("bot id taken", [ev.BotCreated("mira", "Mira", "")]),
    ("bot id is the user's", [ev.BotCreated("you", "You", "")]),
    ("no such bot to update", [ev.BotUpdated("ghost", name="G")]),
    ("blank new name", [ev.BotUpdated("mira", name=" ")]),
    ("no such bot to delete", [ev.BotDeleted("ghost")]),
    ("memory does not exist", [ev.MemoryScored("c1", 999, 2)]),
    ("memory id is a boolean", [ev.MemoryScored("c1", True, 2)]),
    ("no memory to pin", [ev.MemoryPinned("c1", 999, "manual")]),
    ("speaker is unknown", [ev.AssistantTurnStarted("c1", "ghost", 3)]),
    ("user turn is not of this chat", [ev.AssistantTurnStarted("c1", "mira", 1)]),
    ("beat not open", [ev.AssistantTurn("c1", "mira", 3, 999, "text")]),
    ("supersedes nothing visible", [ev.UserTurnEdit("c1", 999, "New.", said("New."))]),
    ("edge to nobody", [ev.EdgeUpdate("mira", "ghost", "c1", 5)]),
    ("edge to oneself", [ev.EdgeUpdate("mira", "mira", "c1", 5)]),
    ("a memory of another chat", [ev.MemoryPinned("c2", 7, "manual")]),
    ("scene of no chat", [ev.SceneClosed("c1", 999)]),
    ("world event unknown", [ev.WorldEventStarted("c1", 999)]),
    ("world event of another chat", [ev.WorldEventStarted("c2", 8)]),
    ("world event not active yet", [ev.WorldEventCompleted("c1", 8)]),
    ("memory in a scene of another chat", [ev.MemoryWritten("c1", "mira", "x", scene_id=9)]),
    ("second scene while one is open", [ev.SceneOpened("c2", "Docks")]),
    ("object from an unknown world event", [ev.ObjectAcquired("c1", "you", "key", 999)]),
    ("object for nobody", [ev.ObjectAcquired("c1", "ghost", "key")]),
    ("a rewind is not appended by hand", [ev.ChatRewound("c1", 3)]),
    # a good event first: the bad one after it takes it down too
    (
        "second of two is bad",
        [ev.UserTurn("c1", "Fine.", said("Fine.")), ev.UserTurn("c404", "x", said("x"))],
    ),
]


@pytest.mark.parametrize(("why", "events"), BAD, ids=[why for why, _ in BAD])
def test_bad_input_is_refused_and_writes_nothing(
    store: Store, why: str, events: list[ev.Event]
) -> None:
    store.append(ev.BotCreated("mira", "Mira", ""), ev.BotCreated("tam", "Tam", ""))
    store.append(ev.ChatCreated("c1", "T", "mira", None, "Inn"))
    (user_id,) = store.append(ev.UserTurn("c1", "Hi.", said("Hi."))).ids
    store.append(ev.ChatCreated("c2", "T", "tam"), ev.UserTurn("c2", "Yo.", said("Yo.")))
    ids = store.append(
        ev.MemoryWritten("c1", "mira", "A visitor."),
        ev.WorldEventCreated("c1", "Storm", "", Artifacts()),
        ev.SceneOpened("c2", "Pier"),
    ).ids
    # ids the cases above rely on: 1, 2 bots; 3 chat c1; 4 its turn; 5, 6 chat c2 and its
    # turn; 7 a memory of c1; 8 a world event of c1; 9 a scene of c2
    assert (user_id, *ids) == (4, 7, 8, 9)
    before = everything(store)
    with pytest.raises(StoreError) as caught:
        store.append(*events, render=lambda ids: [TurnSettled("c1", ids[0])])
    assert str(caught.value), "the refusal says what was wrong"
    assert everything(store) == before


def test_refusals_say_whose_thing_is_missing(store: Store, world: dict[str, str]) -> None:
    with pytest.raises(NotFound, match="no chat 'c42'"):
        store.append(ev.UserTurn("c42", "Hi.", said("Hi.")))
    with pytest.raises(Invalid, match="supersedes: expected an integer"):
        store.append(ev.UserTurnEdit(world["chat"], "4", "x", said("x")))  # type: ignore[arg-type]


def test_a_failing_render_takes_the_events_down_with_it(
    store: Store, world: dict[str, str]
) -> None:
    before = everything(store)

    def render(ids: tuple[int, ...]) -> list[TurnSettled]:
        raise RuntimeError("render bug")

    with pytest.raises(RuntimeError):
        store.append(ev.UserTurn(world["chat"], "Hi.", said("Hi.")), render=render)
    assert everything(store) == before


def test_render_sees_the_new_events_and_its_messages_are_stamped(
    store: Store, world: dict[str, str]
) -> None:
    chat = world["chat"]
    result = store.append(
        ev.MemoryWritten(chat, world["mira"], "The stranger paid in silver."),
        render=lambda ids: [MemoryNote(chat, m) for m in map(store.get_memory, ids) if m],
    )
    (note,) = result.messages
    assert isinstance(note, MemoryNote)
    assert note.seq == 1
    assert note.memory.id == result.ids[0]
    assert note.memory.text == "The stranger paid in silver."


def test_a_commit_survives_reopening(place: Where) -> None:
    first = open_store(place)
    first.append(ev.BotCreated("mira", "Mira", "A barkeep."))
    first.close()
    again = open_store(place)
    try:
        bot = again.get_bot("mira")
        assert bot is not None and bot.persona == "A barkeep."
        if isinstance(place, Path):
            assert again.conn.execute("PRAGMA journal_mode").fetchall()[0][0] == "wal"
    finally:
        again.close()


def test_new_ids_are_readable_and_never_reused(store: Store) -> None:
    assert store.new_bot_id("Mira the Bold!") == "mira-the-bold"
    store.append(ev.BotCreated("mira", "Mira", ""))
    assert store.new_bot_id("Mira") == "mira-2"
    store.append(ev.BotDeleted("mira"))
    assert store.new_bot_id("mira") == "mira-2", "a deleted bot keeps its id"
    assert store.new_bot_id("You") != "you"
    assert store.new_bot_id("???") == "bot"
    assert [store.new_chat_id(), store.new_chat_id()] == ["c1", "c2"]
    store.append(ev.BotCreated("tam", "Tam", ""))
    store.append(ev.ChatCreated("c3", "Taken by hand", "tam"))
    assert store.new_chat_id() == "c4"


def test_statistics_count_what_happened(store: Store, world: dict[str, str]) -> None:
    stats = store.statistics()
    assert stats["appended"] == 3
    assert stats["events"] == 3
    assert stats["schema_version"] >= 1


def test_each_row_is_written_on_the_branch_current_when_it_commits(
    store: Store, world: dict[str, str]
) -> None:
    chat = world["chat"]

    def turn(prose: str) -> int:
        return store.append(ev.UserTurn(chat, prose, said(prose))).ids[0]

    first = turn("Hello.")
    root = store.branch_of(first)
    store.fork(chat, first, "edit")
    forked = store.current_branch(chat)
    assert forked != root
    assert store.branch_of(turn("On the fork.")) == forked
    store.switch_branch(chat, root if root is not None else 0)
    assert store.branch_of(turn("Back at the root.")) == root
    # A switch inside a caller's transaction that rolls back leaves the root current.
    with pytest.raises(RuntimeError), transaction(store.conn):
        store.switch_branch(chat, forked)
        assert store.branch_of(turn("On the fork, for a moment.")) == forked
        raise RuntimeError("the caller gives up")
    assert store.current_branch(chat) == root
    assert store.branch_of(turn("Still at the root.")) == root
