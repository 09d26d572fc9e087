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
from types import TracebackType

import apsw

from ._errors import StorageFull

FULL_MESSAGE = (
    "the disk holding the database is full, so nothing was written; "
    "writes work again once space is freed"
)


def storage_full(exc: BaseException, conn: apsw.Connection | None = None) -> StorageFull | None:
    """The :class:`StorageFull` an error means, or None when it is not about space."""
    if isinstance(exc, apsw.FullError):
        return StorageFull(FULL_MESSAGE)
    if isinstance(exc, apsw.IOError):
        if conn is not None and conn.system_errno == errno.ENOSPC:
            return StorageFull(FULL_MESSAGE)
        return None
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return StorageFull(FULL_MESSAGE)
    return None


@contextmanager
def space_errors(conn: apsw.Connection | None = None) -> Iterator[None]:
    """Turn the ways SQLite and the OS say "no space left" into :class:`StorageFull`."""
    try:
        yield
    except (apsw.Error, OSError) as exc:
        full = storage_full(exc, conn)
        if full is None:
            raise
        raise full from exc


class transaction:  # lower case: it reads as a function, ``with transaction(conn):``
    """Run the block in one transaction: all of it commits, or none of it.

    Inside a transaction already open, the block is a savepoint of it, and
    the caller's transaction maps the errors. A class rather than a
    generator: an append of one event is mostly this, and it costs a third.
    """

    __slots__ = ("_conn", "_nested")

    def __init__(self, conn: apsw.Connection) -> None:
        self._conn = conn
        self._nested = False

    def __enter__(self) -> None:
        conn = self._conn
        if conn.in_transaction:
            self._nested = True
            conn.__enter__()  # a savepoint
            return
        try:
            conn.execute("BEGIN IMMEDIATE")
        except (apsw.Error, OSError) as error:
            _raise_full(error, conn)
            raise

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        conn = self._conn
        if self._nested:
            conn.__exit__(kind, exc, tb)
            return
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


def _raise_full(error: BaseException, conn: apsw.Connection) -> None:
    """Raise the :class:`StorageFull` an error means, if it means one."""
    full = storage_full(error, conn)
    if full is not None:
        raise full from error
