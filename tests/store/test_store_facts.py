"""The facts the store keeps about each chat always equal what its tables say.

They are read once and then trusted by every append (see store/_facts.py),
so a fact kept from a transaction that rolled back, or from before a rewind,
would write wrong rows silently. Each test compares the kept facts with a
fresh read of the tables, and the rows written with what the tables say.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from storeworld import Where, dump_projections, open_store, said
from test_store_property import MOVES, Moves, play

from protocol import events as ev
from store import NotFound, Store
from store._async import _savepoint
from store._facts import read_facts
from store._project import present_now
from store._tx import transaction


def kept_facts_are_true(store: Store) -> None:
    """Every chat's kept facts are what its tables hold now."""
    for chat_id, facts in store._facts.committed().items():
        assert facts == read_facts(store.conn, chat_id), chat_id


def say(store: Store, chat: str, prose: str = "Hello.", person: str | None = None) -> int:
    return store.append(ev.UserTurn(chat, prose, said(prose), person_id=person)).ids[0]


def known(store: Store, chat: str) -> None:
    """Two turns: the first seats you, the second is written with the chat's facts, kept."""
    say(store, chat, "I sit down.")
    say(store, chat, "Hello.")
    assert chat in store._facts.committed()


def written_as_the_tables_say(store: Store, chat: str, event_id: int) -> None:
    """The turn's row names who the tables say is present, and the log its branch."""
    assert store.witnesses(chat, event_id) == present_now(store.conn, chat)
    assert store.branch_of(event_id) == store.current_branch(chat)


def test_a_chat_is_learned_on_its_first_append_and_kept(
    store: Store, world: dict[str, str]
) -> None:
    chat = world["chat"]
    assert chat not in store._facts.committed()
    written_as_the_tables_say(store, chat, say(store, chat))  # seats you: learned next time
    assert chat not in store._facts.committed()
    written_as_the_tables_say(store, chat, say(store, chat, "Again."))
    facts = store._facts.committed()[chat]
    assert facts.people == {"you"}
    assert facts.present == '["mira", "you"]'
    kept_facts_are_true(store)


def test_a_rolled_back_transaction_leaves_no_fact_behind(
    store: Store, world: dict[str, str]
) -> None:
    chat = world["chat"]
    known(store, chat)
    before = store._facts.committed()
    with pytest.raises(RuntimeError), store.transaction():
        store.append(ev.CastAdded(chat, world["tam"]))
        say(store, chat, "Tam is here, for now.")  # learns Tam as present, in the transaction
        raise RuntimeError("the caller gives up")
    assert store._facts.committed().items() <= before.items()  # what it dropped may be gone
    kept_facts_are_true(store)
    written_as_the_tables_say(store, chat, say(store, chat, "Tam never came."))


def test_a_refused_append_leaves_no_fact_behind(store: Store, world: dict[str, str]) -> None:
    chat = world["chat"]
    known(store, chat)
    before = store._facts.committed()
    with pytest.raises(NotFound):
        store.append(
            ev.CastAdded(chat, world["tam"]),
            ev.UserTurn(chat, "Tam is here.", said("x")),
            ev.UserTurn("nowhere", "Where?", said("x")),
        )
    assert store._facts.committed().items() <= before.items()  # what it dropped may be gone
    written_as_the_tables_say(store, chat, say(store, chat, "Still without Tam."))


def test_a_rolled_back_savepoint_leaves_no_fact_behind(
    store: Store, world: dict[str, str]
) -> None:
    """As a group of AsyncStore writes does: one write fails, the others commit."""
    chat = world["chat"]
    known(store, chat)

    def joins_then_fails() -> None:
        store.append(ev.CastAdded(chat, world["tam"]))
        say(store, chat, "Tam is here, for now.")
        raise RuntimeError("this write fails alone")

    with store.transaction():
        say(store, chat, "Before.")
        with pytest.raises(RuntimeError):
            _savepoint(store, joins_then_fails)
        after = say(store, chat, "After.")
    kept_facts_are_true(store)
    assert store.present_bots(chat) == [world["mira"]]
    written_as_the_tables_say(store, chat, after)


def test_a_committed_transaction_keeps_what_it_learned(
    store: Store, world: dict[str, str]
) -> None:
    chat = world["chat"]
    known(store, chat)
    with store.transaction():
        store.append(ev.CastAdded(chat, world["tam"]))
        with store.transaction():
            turn = say(store, chat, "Tam is here.")
    assert store._facts.committed()[chat].present == '["mira", "tam", "you"]'
    kept_facts_are_true(store)
    written_as_the_tables_say(store, chat, turn)


def test_inside_a_transaction_opened_on_the_connection_nothing_is_kept(
    store: Store, world: dict[str, str]
) -> None:
    chat = world["chat"]
    known(store, chat)
    with pytest.raises(RuntimeError), transaction(store.conn):
        store.append(ev.CastAdded(chat, world["tam"]))
        turn = say(store, chat, "Tam is here, for now.")
        written_as_the_tables_say(store, chat, turn)
        assert chat not in store._facts.committed()
        raise RuntimeError("the caller gives up")
    kept_facts_are_true(store)
    written_as_the_tables_say(store, chat, say(store, chat, "Tam never came."))


def test_a_new_speaker_is_seated_and_the_facts_follow(store: Store, world: dict[str, str]) -> None:
    chat = world["chat"]
    known(store, chat)
    store.append(ev.PersonaCreated("bea", "Bea", "A sailor."))
    turn = say(store, chat, "Bea sits down.", person="bea")
    assert store.witnesses(chat, turn) == ("mira", "you", "bea")
    say(store, chat, "Bea again.", person="bea")
    assert store._facts.committed()[chat].people == {"you", "bea"}
    kept_facts_are_true(store)


def test_after_a_rewind_and_a_switch_the_facts_are_the_branch_s(
    store: Store, world: dict[str, str]
) -> None:
    chat, tam = world["chat"], world["tam"]
    first = say(store, chat)
    root = store.current_branch(chat)
    store.append(ev.CastAdded(chat, tam))
    written_as_the_tables_say(store, chat, say(store, chat, "Tam is here."))
    store.rewind(chat, first)
    rewound = store.current_branch(chat)
    turn = say(store, chat, "Tam never came.")
    assert store.witnesses(chat, turn) == ("mira", "you")
    written_as_the_tables_say(store, chat, turn)
    kept_facts_are_true(store)
    store.switch_branch(chat, root)
    turn = say(store, chat, "Back where Tam is.")
    assert store.witnesses(chat, turn) == ("mira", "tam", "you")
    assert store.branch_of(turn) == root != rewound
    kept_facts_are_true(store)
    store.fork(chat, turn, "edit")
    written_as_the_tables_say(store, chat, say(store, chat, "On a fork."))
    kept_facts_are_true(store)


def test_a_deleted_bot_leaves_every_chat_s_cast(store: Store, world: dict[str, str]) -> None:
    chat, tam = world["chat"], world["tam"]
    store.append(ev.CastAdded(chat, tam))
    known(store, chat)
    store.append(ev.BotDeleted(tam))
    written_as_the_tables_say(store, chat, say(store, chat, "Tam is gone."))
    assert store.present_bots(chat) == [world["mira"]]


def test_forget_chat_drops_what_another_process_made_untrue(
    store: Store, world: dict[str, str], place: Where
) -> None:
    chat = world["chat"]
    known(store, chat)
    other = open_store(place, recover=False)  # another process, on the same database
    try:
        other.append(ev.CastAdded(chat, world["tam"]))
    finally:
        other.close()
    assert store._facts.committed()[chat] != read_facts(store.conn, chat)
    store.forget_chat(chat)
    assert chat not in store._facts.committed()
    turn = say(store, chat, "Tam came in through the other door.")
    assert store.witnesses(chat, turn) == ("mira", "tam", "you")
    kept_facts_are_true(store)
    store.forget_all()
    assert store._facts.committed() == {}


# --- random sequences, some of them rolled back ---

PLAIN, ROLLED_BACK, SAVEPOINT_ROLLED_BACK, RAW_ROLLED_BACK = range(4)


class GivesUp(Exception):
    """Raised to roll a step back."""


def step(store: Store, moves: Moves, drawn: tuple[int, int, int, int, int]) -> None:
    """One drawn move, committed or rolled back in one of the ways a write can be."""
    index, a, b, c, how = drawn

    def move() -> None:
        events = MOVES[index](moves, a, b, c)
        if events:
            store.append(*events)
        chats = moves.chats()
        if chats:  # a turn after it, which learns its chat's facts again
            chat = chats[a % len(chats)]
            written_as_the_tables_say(store, chat, say(store, chat, f"after {index}"))

    if how == PLAIN:
        move()
    elif how == ROLLED_BACK:
        with pytest.raises(GivesUp), store.transaction():
            move()
            raise GivesUp
    elif how == SAVEPOINT_ROLLED_BACK:
        with store.transaction():

            def fails() -> None:
                move()
                raise GivesUp

            with pytest.raises(GivesUp):
                _savepoint(store, fails)
            chats = moves.chats()
            if chats:
                say(store, chats[b % len(chats)], "the group goes on")
    else:
        with pytest.raises(GivesUp), transaction(store.conn):
            move()
            raise GivesUp


numbers = st.integers(min_value=0, max_value=10_000)
steps = st.lists(
    st.tuples(st.integers(0, len(MOVES) - 1), numbers, numbers, numbers, st.integers(0, 3)),
    min_size=10,
    max_size=50,
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(drawn=steps)
def test_kept_facts_equal_fresh_reads_after_any_sequence(
    drawn: list[tuple[int, int, int, int, int]],
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        store = open_store(Path(folder))
        try:
            play(store, [])
            moves = Moves(store)
            for one in drawn:
                step(store, moves, one)
                kept_facts_are_true(store)
            # The rows the kept facts wrote are those a replay from the log writes.
            incremental = dump_projections(store)
            store.rebuild()
            assert dump_projections(store) == incremental
        finally:
            store.close()
