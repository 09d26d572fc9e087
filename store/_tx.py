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
from typing import Any

import apsw

from ._conn import Connection
from ._errors import StorageFull

FULL_MESSAGE = (
    "the disk holding the database is full, so nothing was written; "
    "writes work again once space is freed"
)


@contextmanager
def space_errors(conn: Any = None) -> Iterator[None]:
    """Turn the ways SQLite and the OS say "no space left" into :class:`StorageFull`."""
    try:
        yield
    except apsw.FullError as exc:
        raise StorageFull(FULL_MESSAGE) from exc
    except apsw.IOError as exc:
        if isinstance(conn, apsw.Connection) and conn.system_errno == errno.ENOSPC:
            raise StorageFull(FULL_MESSAGE) from exc
        raise
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise StorageFull(FULL_MESSAGE) from exc
        raise


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


@contextmanager
def transaction(conn: Connection) -> Iterator[None]:
    """Run the block in one transaction: all of it commits, or none of it."""
    if conn.in_transaction:
        with savepoint(conn):
            yield
        return
    with space_errors(conn):
        conn.execute("BEGIN IMMEDIATE")
        _fenced[id(conn)] = set()
        try:
            yield
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:  # SQLite may have rolled back on its own already
                conn.execute("ROLLBACK")
            raise
        finally:
            _fenced.pop(id(conn), None)
