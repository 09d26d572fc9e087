"""Transactions the store opens: BEGIN IMMEDIATE ... COMMIT, or a savepoint when nested.

apsw's own ``with connection:`` commits through a savepoint release that
keeps Python's GIL for the whole commit; a rewind's commit writes thousands
of pages, and the trio loop waiting on the store's thread stalled for about
30 ms. A plain ``COMMIT`` statement runs like any other, with the GIL
released while SQLite works. IMMEDIATE takes the write lock up front, so a
second writer waits (busy timeout) at the start, never half-way through.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import apsw


@contextmanager
def transaction(conn: apsw.Connection) -> Iterator[None]:
    """Run the block in one transaction: all of it commits, or none of it."""
    if conn.in_transaction:
        with conn:  # a savepoint inside the caller's transaction
            yield
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:  # SQLite may have rolled back on its own already
            conn.execute("ROLLBACK")
        raise
