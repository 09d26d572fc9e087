"""Transactions the store opens: BEGIN IMMEDIATE ... COMMIT, or a savepoint when nested.

apsw's own ``with connection:`` commits through a savepoint release that
keeps Python's GIL for the whole commit; a rewind's commit writes thousands
of pages, and the trio loop waiting on the store's thread stalled for about
30 ms. A plain ``COMMIT`` statement runs like any other, with the GIL
released while SQLite works. IMMEDIATE takes the write lock up front, so a
second writer waits (busy timeout) at the start, never half-way through.

A full disk is mapped here, once, for every write: SQLite says
``SQLITE_FULL`` ("database or disk is full"), or an I/O error whose system
error is ``ENOSPC``; both become :class:`StorageFull`.

Each open transaction also knows which chats its store's fence already let
it write (:func:`first_write`): the fence is asked once per chat and
transaction, and asked again for a chat whose savepoint rolled back.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Any

import apsw

from ._conn import Connection
from ._errors import StorageFull

FULL_MESSAGE = (
    "the disk holding the database is full, so nothing was written; "
    "writes work again once space is freed"
)


def storage_full(exc: BaseException, conn: Any = None) -> StorageFull | None:
    """The :class:`StorageFull` an error means, or None when it is not about space."""
    if isinstance(exc, apsw.FullError):
        return StorageFull(FULL_MESSAGE)
    if isinstance(exc, apsw.IOError):
        if isinstance(conn, apsw.Connection) and conn.system_errno == errno.ENOSPC:
            return StorageFull(FULL_MESSAGE)
        return None
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return StorageFull(FULL_MESSAGE)
    return None


@contextmanager
def space_errors(conn: Any = None) -> Iterator[None]:
    """Turn the ways SQLite and the OS say "no space left" into :class:`StorageFull`."""
    try:
        yield
    except (apsw.Error, OSError) as exc:
        full = storage_full(exc, conn)
        if full is None:
            raise
        raise full from exc


_fenced: dict[int, set[str]] = {}
"""By connection (its id, while its transaction is open): the chats the fence let through."""


def first_write(conn: Connection, chat_id: str) -> bool:
    """Whether the open transaction writes ``chat_id`` for the first time (noting that it does).

    Outside a transaction of :func:`transaction`, every write is a first one.
    """
    seen = _fenced.get(id(conn))
    if seen is None:
        return True
    if chat_id in seen:
        return False
    seen.add(chat_id)
    return True


@contextmanager
def savepoint(conn: Connection) -> Iterator[None]:
    """A savepoint inside the open transaction: rolled back alone, fence marks with it."""
    seen = _fenced.get(id(conn))
    before = set(seen) if seen is not None else None
    try:
        with conn:  # inside the caller's transaction, which maps its errors
            yield
    except BaseException:
        if seen is not None and before is not None:
            seen.intersection_update(before)
        raise


class transaction:  # lower case: it reads as a function, ``with transaction(conn):``
    """Run the block in one transaction: all of it commits, or none of it.

    Inside a transaction already open, the block is a savepoint of it, and
    the caller's transaction maps the errors. A class rather than a
    generator: an append of one event is mostly this, and it costs a third.
    """

    __slots__ = ("_before", "_conn", "_nested")

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._nested = False
        self._before: set[str] | None = None

    def __enter__(self) -> None:
        conn = self._conn
        if conn.in_transaction:
            self._nested = True
            seen = _fenced.get(id(conn))
            self._before = None if seen is None else set(seen)
            conn.__enter__()  # a savepoint
            return
        try:
            conn.execute("BEGIN IMMEDIATE")
        except (apsw.Error, OSError) as error:
            _raise_full(error, conn)
            raise
        _fenced[id(conn)] = set()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        conn = self._conn
        if self._nested:
            if exc is not None and self._before is not None:
                # The savepoint rolls back: the fence is asked again for what it wrote.
                seen = _fenced.get(id(conn))
                if seen is not None:
                    seen.intersection_update(self._before)
            conn.__exit__(kind, exc, tb)
            return
        _fenced.pop(id(conn), None)
        try:
            if exc is None:
                try:
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
                return
            if conn.in_transaction:  # SQLite may have rolled back on its own already
                conn.execute("ROLLBACK")
        except (apsw.Error, OSError) as error:
            _raise_full(error, conn)
            raise
        _raise_full(exc, conn)


def _raise_full(error: BaseException, conn: Connection) -> None:
    """Raise the :class:`StorageFull` an error means, if it means one."""
    full = storage_full(error, conn)
    if full is not None:
        raise full from error
