"""The store's connection on PostgreSQL: the part of apsw's connection the store uses.

:class:`PgConnection` takes the store's SQLite statements, rewritten once
each by :mod:`store._dialect`, and runs them on one psycopg connection in
autocommit mode, so the store's own ``BEGIN`` / ``COMMIT`` and ``with conn:``
savepoints nest as they do on apsw. Booleans bind as 0 and 1, as SQLite
stores them.

Several processes share the database, so the session never holds locks
for long: a transaction left idle (a paused process) is ended by the server
after ``IDLE_IN_TRANSACTION``, and a statement waits at most ``LOCK_WAIT``
for another's row lock. A lost connection (the server restarted, or ended
this session) is :class:`store.Unavailable`, and the next call connects
again; a full disk is :class:`StorageFull` as on SQLite.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Any, Final

import psycopg
from psycopg import errors as pgerr
from psycopg.pq import TransactionStatus
from psycopg.types.numeric import Int8Dumper

from ._dialect import translate
from ._errors import Invalid, StorageFull, StoreError, Unavailable
from ._tx import FULL_MESSAGE

IDLE_IN_TRANSACTION: Final = "10s"
"""A transaction left open this long by a stalled process is ended by the server."""

LOCK_WAIT: Final = "5s"
"""How long a statement waits for a lock another connection holds (as apsw's busy timeout)."""

CONNECT_TIMEOUT: Final = 5
"""Seconds to reach the server before the call is :class:`Unavailable`."""

SCHEMES: Final = ("postgresql://", "postgres://")


def is_url(target: object) -> bool:
    """Whether a store target names a PostgreSQL database rather than a file."""
    return isinstance(target, str) and target.startswith(SCHEMES)


class PgConnection:
    """One PostgreSQL session speaking the store's SQLite dialect; one thread owns it."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._conn: psycopg.Connection[Any] | None = None
        self._savepoints: list[str | None] = []
        self._last_id: int | None = None
        self._rowcount = 0
        self._connection()  # a wrong URL is told at once

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is not None and not self._conn.closed:
            return self._conn
        self._savepoints.clear()
        with self._errors():
            conn = psycopg.connect(
                self.url,
                autocommit=True,
                connect_timeout=CONNECT_TIMEOUT,
                keepalives=1,
                keepalives_idle=5,
                keepalives_interval=2,
                keepalives_count=3,
            )
        conn.adapters.register_dumper(bool, Int8Dumper)
        conn.execute(f"SET idle_in_transaction_session_timeout = '{IDLE_IN_TRANSACTION}'")
        conn.execute(f"SET lock_timeout = '{LOCK_WAIT}'")
        self._conn = conn
        return conn

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """psycopg's errors as the store's: the boundary where they are mapped, once."""
        try:
            yield
        except pgerr.DiskFull as exc:
            raise StorageFull(FULL_MESSAGE) from exc
        except pgerr.UniqueViolation as exc:
            # Only a concurrent writer gets here: the store checks before it inserts.
            raise Invalid(f"another writer took it first: {exc.diag.message_detail}") from exc
        except psycopg.DataError as exc:
            raise Invalid(f"the database refused a value: {exc}") from exc
        except psycopg.Error as exc:
            if self._conn is None or self._conn.closed or self._conn.broken:
                self._drop()
                raise Unavailable(f"the database is unreachable: {exc}") from exc
            if isinstance(exc, pgerr.LockNotAvailable | pgerr.DeadlockDetected):
                raise Unavailable(f"the database is busy: {exc}") from exc
            raise
        except ValueError as exc:  # psycopg refuses a NUL in text before sending it
            raise Invalid(f"the database refused a value: {exc}") from exc

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        self._savepoints.clear()
        if conn is not None:
            conn.close()

    # --- what the store calls ---

    def execute(self, sql: str, bindings: Any = None, /) -> psycopg.Cursor[Any]:
        """Run one statement of the store's; its rows, as tuples."""
        statement = translate(sql)
        params = statement.bind(bindings)
        conn = self._connection()
        if statement.sql == "COMMIT" and self._failed():
            # PostgreSQL would answer COMMIT with a silent rollback: say it instead.
            self.execute("ROLLBACK")
            raise StoreError("a statement of the transaction failed; nothing of it was written")
        with self._errors():
            cursor = conn.execute(statement.sql, params)
            if statement.returns_id:
                row = cursor.fetchone()
                assert row is not None
                self._last_id = int(row[0])
            self._rowcount = cursor.rowcount
        return cursor

    def executemany(self, sql: str, sequenceofbindings: Iterable[Any], /) -> psycopg.Cursor[Any]:
        """Run one statement once per set of parameters."""
        statement = translate(sql)
        rows = [statement.bind(one) for one in sequenceofbindings]
        conn = self._connection()
        with self._errors():
            cursor = conn.cursor()
            cursor.executemany(statement.sql, rows)
            self._rowcount = cursor.rowcount
        return cursor

    def script(self, sql: str) -> None:
        """Run several statements as they are (PostgreSQL's own DDL), no parameters."""
        conn = self._connection()
        with self._errors():
            conn.execute(sql)

    def last_insert_rowid(self) -> int:
        """The id the database gave the last row inserted into a table of ``AUTO_IDS``."""
        if self._last_id is None:
            raise RuntimeError("no row with an id handed out was inserted yet")
        return self._last_id

    def changes(self) -> int:
        """Rows the last statement changed."""
        return self._rowcount

    def _failed(self) -> bool:
        conn = self._conn
        return conn is not None and conn.info.transaction_status == TransactionStatus.INERROR

    @property
    def in_transaction(self) -> bool:
        """Whether a transaction is open (a failed one too, until it is rolled back)."""
        conn = self._conn
        if conn is None or conn.closed:
            return False
        status = conn.info.transaction_status
        return status in (TransactionStatus.INTRANS, TransactionStatus.INERROR)

    def __enter__(self) -> PgConnection:
        """A transaction, or a savepoint inside one: apsw's ``with connection:``."""
        if self.in_transaction:
            name = f"s{len(self._savepoints)}"
            self.execute(f"SAVEPOINT {name}")
            self._savepoints.append(name)
        else:
            self.execute("BEGIN")
            self._savepoints.append(None)
        return self

    def __exit__(
        self,
        etype: type[BaseException] | None,
        evalue: BaseException | None,
        etb: TracebackType | None,
        /,
    ) -> bool | None:
        if not self._savepoints:
            return None  # the connection was lost inside: nothing is open any more
        name = self._savepoints.pop()
        if not self.in_transaction:
            return None
        if name is None:
            self.execute("COMMIT" if etype is None else "ROLLBACK")
        elif etype is None:
            self.execute(f"RELEASE SAVEPOINT {name}")
        else:
            self.execute(f"ROLLBACK TO SAVEPOINT {name}")
            self.execute(f"RELEASE SAVEPOINT {name}")
        return None

    def close(self) -> None:
        """Close the session; a transaction still open is rolled back by the server."""
        self._drop()
