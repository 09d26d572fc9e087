"""Casts and presence: who a chat is with, who is in its scene, who witnessed each turn."""

from __future__ import annotations

from pathlib import Path

import pytest
from storeworld import Where, dump_projections, open_store, said
from test_store_schema import old_database

from protocol import events as ev
from store import Invalid, NotFound, Store

BOTS = ["mira", "ada", "tobin", "wren"]


@pytest.fixture
def store(place: Where) -> Store:
    s = open_store(place)
    s.append(*(ev.BotCreated(b, b.title(), "") for b in BOTS))
    s.append(ev.ChatCreated("c1", "Inn", "mira", "ada", None, ("mira", "ada", "tobin")))
    return s


def refused(s: Store, event: ev.Event, error: type[Exception]) -> None:
    before = dump_projections(s)
    count = s.event_count()
    with pytest.raises(error):
        s.append(event)
    assert s.event_count() == count, "a refused event writes nothing"
    assert dump_projections(s) == before


def test_a_chat_created_with_a_cast_has_it_all_present(store: Store) -> None:
    chat = store.get_chat("c1")
    assert chat is not None
    assert (chat.host_bot_id, chat.guest_bot_id) == ("mira", "ada")
    assert chat.cast == ("mira", "ada", "tobin") == chat.present


def test_a_chat_created_the_first_way_has_its_host_and_guest_as_cast(store: Store) -> None:
    store.append(ev.ChatCreated("c2", "Old", "wren", "tobin"))
    chat = store.get_chat("c2")
    assert chat is not None and chat.cast == ("wren", "tobin")


def test_presence_moves_and_the_turns_keep_their_witnesses(store: Store) -> None:
    store.append(ev.PresenceChanged("c1", "ada", False))
    assert store.present_bots("c1") == ["mira", "tobin"]
    said_id = store.append(ev.UserTurn("c1", "The word is plum.", said("x"))).ids[0]
    store.append(ev.PresenceChanged("c1", "ada", True))
    back = store.append(ev.UserTurn("c1", "Ada, hello.", said("y"))).ids[0]
    assert store.witnesses("c1", said_id) == ("mira", "tobin", "you")
    assert store.witnesses("c1", back) == ("mira", "ada", "tobin", "you")
    # Read together, as a turn reads its dialogue's: the same, and no entry for no turn.
    assert store.witnesses_of("c1", [said_id, back, 10**9]) == {
        said_id: ("mira", "tobin", "you"),
        back: ("mira", "ada", "tobin", "you"),
    }
    assert store.witnesses_of("c1", []) == {}
    assert store.witnesses_of("c2", [said_id]) == {}
    assert [t.text for t in store.recent_dialogue("c1", 10, witness="ada")] == ["Ada, hello."]
    assert len(store.recent_dialogue("c1", 10, witness="mira")) == 2


def test_the_cast_grows_and_shrinks_and_the_guest_column_follows(store: Store) -> None:
    store.append(ev.CastAdded("c1", "wren"))
    store.append(ev.CastRemoved("c1", "ada"))
    chat = store.get_chat("c1")
    assert chat is not None
    assert chat.cast == ("mira", "tobin", "wren")
    assert chat.guest_bot_id == "tobin"


def test_a_deleted_bot_leaves_every_cast(store: Store) -> None:
    store.append(ev.BotDeleted("tobin"))
    chat = store.get_chat("c1")
    assert chat is not None and chat.cast == ("mira", "ada")


@pytest.mark.parametrize(
    ("event", "error"),
    [
        (ev.PresenceChanged("c1", "wren", True), Invalid),  # not in the cast
        (ev.PresenceChanged("c1", "ada", True), Invalid),  # already there
        (ev.PresenceChanged("c9", "ada", False), NotFound),
        (ev.CastAdded("c1", "ada"), Invalid),
        (ev.CastAdded("c1", "nobody"), NotFound),
        (ev.CastRemoved("c1", "mira"), Invalid),  # the host
        (ev.CastRemoved("c1", "wren"), Invalid),
        (ev.ChatCreated("c2", "T", "mira", None, None, ("mira", "mira")), Invalid),
        (ev.ChatCreated("c2", "T", "ada", None, None, ("mira", "ada")), Invalid),
        (ev.ChatCreated("c2", "T", "mira", "nobody", None, ("mira", "nobody")), NotFound),
    ],
)
def test_bad_cast_and_presence_events_write_nothing(
    store: Store, event: ev.Event, error: type[Exception]
) -> None:
    refused(store, event, error)


def test_the_last_one_present_cannot_leave(store: Store) -> None:
    store.append(ev.PresenceChanged("c1", "ada", False), ev.PresenceChanged("c1", "tobin", False))
    refused(store, ev.PresenceChanged("c1", "mira", False), Invalid)


def test_a_full_cast_takes_no_one_more(place: Where) -> None:
    s = open_store(place)
    ids = [f"b{n}" for n in range(9)]
    s.append(*(ev.BotCreated(b, b, "") for b in ids))
    s.append(ev.ChatCreated("c1", "Crowd", ids[0], ids[1], None, tuple(ids[:8])))
    refused(s, ev.CastAdded("c1", ids[8]), Invalid)
    refused(s, ev.ChatCreated("c2", "Too many", ids[0], ids[1], None, tuple(ids)), Invalid)


def test_an_old_database_gets_casts_from_its_hosts_and_guests(tmp_path: Path) -> None:
    history: list[ev.Event] = [
        ev.BotCreated("mira", "Mira", ""),
        ev.BotCreated("tam", "Tam", ""),
        ev.ChatCreated("c1", "Old", "mira", "tam"),
        ev.UserTurn("c1", "Hello.", said("Hello.")),
    ]
    old_database(tmp_path / "old.db", history, 4)
    s = Store.open(tmp_path / "old.db")
    try:
        chat = s.get_chat("c1")
        assert chat is not None and chat.cast == ("mira", "tam") == chat.present
        turn = s.timeline("c1")[0]
        assert s.witnesses("c1", turn.event_id) == ("mira", "tam", "you")
    finally:
        s.close()


def test_the_named_write_tells_each_change_as_presence_then_the_chat(store: Store) -> None:
    from protocol import ChatNote, Presence
    from store import move_cast

    result = move_cast(store, [ev.PresenceChanged("c1", "ada", False), ev.CastAdded("c1", "wren")])
    assert [(m.bot_id, m.present) for m in result.messages if isinstance(m, Presence)] == [
        ("ada", False),
        ("wren", True),
    ]
    assert [m.seq for m in result.messages] == [1, 2, 3]
    note = result.messages[-1]
    assert isinstance(note, ChatNote) and note.chat == store.get_chat("c1")
    assert note.chat.cast[-1] == "wren" and "ada" not in note.chat.present


def test_a_mute_is_kept_in_cast_order_refused_twice_and_forgotten_with_the_cast(
    store: Store,
) -> None:
    store.append(ev.MuteChanged("c1", "tobin", True), ev.MuteChanged("c1", "mira", True))
    chat = store.get_chat("c1")
    assert chat is not None and chat.muted == ("mira", "tobin") and chat.present == chat.cast
    assert store.muted_bots("c1") == ["mira", "tobin"]
    refused(store, ev.MuteChanged("c1", "tobin", True), Invalid)
    refused(store, ev.MuteChanged("c1", "ada", False), Invalid)
    refused(store, ev.MuteChanged("c1", "wren", True), Invalid)  # not in the cast
    refused(store, ev.MuteChanged("c9", "ada", True), NotFound)
    # Away, a muted member stays muted; out of the cast and back, it is not.
    store.append(ev.PresenceChanged("c1", "tobin", False))
    assert store.muted_bots("c1") == ["mira", "tobin"]
    store.append(ev.CastRemoved("c1", "tobin"), ev.CastAdded("c1", "tobin"))
    assert store.muted_bots("c1") == ["mira"]
    store.append(ev.MuteChanged("c1", "mira", False))
    assert store.muted_bots("c1") == []


def test_a_rewind_takes_back_a_mute_made_after_its_point(store: Store) -> None:
    turn = store.append(ev.UserTurn("c1", "Hello.", said("Hello."))).ids[0]
    store.append(ev.MuteChanged("c1", "ada", True))
    store.append(ev.UserTurn("c1", "Ada?", said("Ada?")))
    assert store.muted_bots("c1") == ["ada"]
    store.rewind("c1", turn)
    assert store.muted_bots("c1") == []
    projected = dump_projections(store)
    store.rebuild()
    assert dump_projections(store) == projected
