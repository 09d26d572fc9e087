"""The schema version and its forward migrations, from the very first schema on."""

from __future__ import annotations

from pathlib import Path

import apsw
import pytest
from storeworld import dump_projections, said

from protocol import dump_event
from protocol import events as ev
from store import Store, StoreError
from store._schema import LATEST, MIGRATIONS, migrate, version
from store._store import connect


def test_a_fresh_database_gets_the_latest_schema(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "t.db")
    try:
        assert version(store.conn) == LATEST == len(MIGRATIONS)
        assert store.conn.execute("PRAGMA synchronous").fetchall() == [(1,)]  # NORMAL
        assert store.conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    finally:
        store.close()


def old_database(path: Path, events: list[ev.Event], at_version: int = 1) -> None:
    """A database as an old schema left it: log rows written by that version."""
    conn = connect(path)
    migrate(conn, target=at_version)
    assert version(conn) == at_version
    with conn:
        for n, event in enumerate(events, start=1):
            kind, payload = dump_event(event)
            conn.execute(
                "INSERT INTO event_log(at, chat_id, kind, payload) VALUES (?, ?, ?, ?)",
                (f"2029-01-01T00:00:{n:02d}.000+00:00", ev.chat_of(event), kind, payload),
            )
    conn.close()


HISTORY: list[ev.Event] = [
    ev.BotCreated("mira", "Mira", "A barkeep."),
    ev.ChatCreated("c1", "Old story", "mira", None, "Inn"),
    ev.UserTurn("c1", "Hello.", said("Hello.")),
    ev.MemoryWritten("c1", "mira", "An old guest."),
    ev.ObjectAcquired("c1", "you", "brass key"),  # version 2's inventory did not exist
]


REBUILT_FROM = [v for v in range(1, LATEST) if any(m.rebuild for m in MIGRATIONS[v:])]
"""The versions a later migration rebuilds from (the fake old databases hold only a log)."""


@pytest.mark.parametrize("old", REBUILT_FROM)
def test_an_old_database_is_migrated_and_its_new_tables_filled(tmp_path: Path, old: int) -> None:
    old_database(tmp_path / "old.db", HISTORY, old)
    store = Store.open(tmp_path / "old.db")
    try:
        assert version(store.conn) == LATEST
        assert store.inventory("you") == ["brass key"], "filled from the log by a rebuild"
        assert [t.text for t in store.timeline("c1")] == ["Hello."]
        assert store.relevant_memories("mira", "guest", chat_id="c1")[0].text == "An old guest."
        assert store.get_you().name == "You"
        migrated = dump_projections(store)
    finally:
        store.close()

    # the same history appended by today's code gives the same projections
    fresh = Store.open(tmp_path / "new.db")
    try:
        times = iter(f"2029-01-01T00:00:{n:02d}.000+00:00" for n in range(1, 10))
        fresh.now = lambda: next(times)
        fresh.append(*HISTORY)
        assert dump_projections(fresh) == migrated
    finally:
        fresh.close()


def test_migrations_run_once(tmp_path: Path) -> None:
    old_database(tmp_path / "old.db", HISTORY)
    Store.open(tmp_path / "old.db").close()
    store = Store.open(tmp_path / "old.db")
    try:
        assert store.statistics()["rebuilds"] == 0, "already migrated: nothing to rebuild"
        assert store.inventory("you") == ["brass key"]
    finally:
        store.close()


def test_a_database_from_a_newer_troupe_is_refused(tmp_path: Path) -> None:
    conn = apsw.Connection(str(tmp_path / "new.db"))
    conn.execute(f"PRAGMA user_version = {LATEST + 1}")
    conn.close()
    with pytest.raises(StoreError, match="newer than this troupe knows"):
        Store.open(tmp_path / "new.db")


def test_the_commands_table_comes_without_a_rebuild(tmp_path: Path) -> None:
    path = tmp_path / "v12.db"
    store = Store.open(path)
    store.append(*HISTORY)
    store.close()
    conn = connect(path)
    conn.execute("DROP TABLE commands; PRAGMA user_version = 12")
    conn.close()
    again = Store.open(path)
    try:
        assert version(again.conn) == LATEST
        assert again.statistics()["rebuilds"] == 0, "no projection changed"
        assert again.command_record("", "any") is None
        assert again.inventory("you") == ["brass key"]
    finally:
        again.close()
