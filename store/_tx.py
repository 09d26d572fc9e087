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
"""

from __future__ import annotations

import errno
from collections.abc import Iterator
from contextlib import contextmanager

import apsw

from ._errors import StorageFull

FULL_MESSAGE = (
    "the disk holding the database is full, so nothing was written; "
    "writes work again once space is freed"
)


@contextmanager
def space_errors(conn: apsw.Connection | None = None) -> Iterator[None]:
    """Turn the ways SQLite and the OS say "no space left" into :class:`StorageFull`."""
    try:
        yield
    except apsw.FullError as exc:
        raise StorageFull(FULL_MESSAGE) from exc
    except apsw.IOError as exc:
        if conn is not None and conn.system_errno == errno.ENOSPC:
            raise StorageFull(FULL_MESSAGE) from exc
        raise
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise StorageFull(FULL_MESSAGE) from exc
        raise


@contextmanager
def transaction(conn: apsw.Connection) -> Iterator[None]:
    """Run the block in one transaction: all of it commits, or none of it."""
    if conn.in_transaction:
        with conn:  # a savepoint inside the caller's transaction, which maps its errors
            yield
        return
    with space_errors(conn):
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:  # SQLite may have rolled back on its own already
                conn.execute("ROLLBACK")
            raise
