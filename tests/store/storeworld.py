"""A small world to test the store with: a clock, two bots, a chat, and table dumps."""

from __future__ import annotations

import contextlib
import itertools
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg

from protocol import Segment
from protocol import events as ev
from store import Store
from store._schema import PROJECTION_TABLES

if TYPE_CHECKING:
    from tests.support.servers import PostgresServer


def ticking_clock(start: int = 0) -> Callable[[], str]:
    """A clock that moves one second per call, so timestamps are distinct and repeatable."""
    counter = itertools.count(start)

    def now() -> str:
        n = next(counter)
        return f"2030-01-01T{n // 3600 % 24:02d}:{n // 60 % 60:02d}:{n % 60:02d}.000+00:00"

    return now


Where = Path | str
"""Where a test's store lives: a folder (its SQLite file inside), or a PostgreSQL URL."""


def target(where: Where) -> Path | str:
    """What ``Store.open`` is given for a place: the file in the folder, or the URL."""
    return where if isinstance(where, str) else where / "troupe.db"


def open_store(where: Where, **kwargs: Any) -> Store:
    """A store on a real file in the folder ``where`` (or the database it names), with the
    ticking clock."""
    kwargs.setdefault("now", ticking_clock())
    if isinstance(where, str):
        return Store.open(where, **kwargs)
    return Store.open(where / "troupe.db", data_dir=where, **kwargs)


def said(prose: str) -> tuple[Segment, ...]:
    """The segments of plain narration, enough for the store (which does not parse)."""
    return (Segment("narration", prose),)


def add_bot(store: Store, name: str, persona: str = "", greeting: str = "") -> str:
    """Create a bot; returns its id."""
    bot_id = store.new_bot_id(name)
    store.append(ev.BotCreated(bot_id, name, persona or f"{name} is a character.", greeting))
    return bot_id


def add_chat(
    store: Store,
    host: str,
    guest: str | None = None,
    location: str | None = None,
    title: str = "A story",
) -> tuple[str, int]:
    """Create a chat; returns its id and the chat_created event's id."""
    chat_id = store.new_chat_id()
    ids = store.append(ev.ChatCreated(chat_id, title, host, guest, location)).ids
    return chat_id, ids[0]


def exchange(
    store: Store, chat_id: str, speaker: str, prose: str, reply: str
) -> tuple[int, int, int]:
    """A whole turn: user_turn, a beat started and completed. Returns (user, beat, reply) ids."""
    (user_id,) = store.append(ev.UserTurn(chat_id, prose, said(prose))).ids
    (beat_id,) = store.append(ev.AssistantTurnStarted(chat_id, speaker, user_id)).ids
    (reply_id,) = store.append(ev.AssistantTurn(chat_id, speaker, user_id, beat_id, reply)).ids
    return user_id, beat_id, reply_id


def dump_projections(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    """Every projection table's rows in a fixed order, and the log's visibility marks."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    for table in PROJECTION_TABLES:
        columns = "rowid, text" if table == "memories_fts" else "*"
        rows = store.conn.execute(f"SELECT {columns} FROM {table}").fetchall()
        out[table] = sorted((tuple(row) for row in rows), key=repr)
    out["event_log marks"] = store.conn.execute(
        "SELECT id, superseded_by, rewound_by FROM event_log ORDER BY id"
    ).fetchall()
    return out


def log_count(store: Store) -> int:
    """How many rows the log holds."""
    return store.event_count()


class Places:
    """Where a test's stores live: fresh folders, or fresh schemas on the test server."""

    _names = itertools.count(1)

    def __init__(self, backend: str, server: PostgresServer | None) -> None:
        self.backend = backend
        self.server = server

    @contextlib.contextmanager
    def fresh(self) -> Iterator[Where]:
        """A new, empty place for a store, gone after the block."""
        if self.server is None:
            with tempfile.TemporaryDirectory() as folder:
                yield Path(folder)
            return
        # A schema of its own in the server's database: as empty as a new database
        # to a store whose session searches only it, and much cheaper to make.
        name = f"store_{next(self._names)}"
        with psycopg.connect(self.server.url, autocommit=True) as admin:
            admin.execute(f"CREATE SCHEMA {name}")
        try:
            yield f"{self.server.url}?options=-csearch_path%3D{name}"
        finally:
            with psycopg.connect(self.server.url, autocommit=True) as admin:
                admin.execute(f"DROP SCHEMA {name} CASCADE")
