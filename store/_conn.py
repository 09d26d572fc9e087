"""What the store asks of a database connection: the part of apsw's it uses.

Projections, queries and writes are written once, against this: an
``apsw.Connection`` has it as it is, and :class:`store._pg.PgConnection`
gives it on PostgreSQL (see docs/scale-out.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from types import TracebackType
from typing import Any, Protocol


class Cursor(Protocol):
    """The rows of one statement, as tuples."""

    def __iter__(self) -> Iterator[Any]: ...

    def fetchall(self) -> list[Any]: ...


class Connection(Protocol):
    """One connection, owned by one thread; SQL in SQLite's dialect, ``?`` parameters."""

    def execute(self, sql: str, bindings: Any = None, /) -> Cursor: ...

    def executemany(self, sql: str, sequenceofbindings: Iterable[Any], /) -> Cursor: ...

    def last_insert_rowid(self) -> int: ...

    @property
    def in_transaction(self) -> bool: ...

    def __enter__(self) -> Any: ...

    def __exit__(
        self,
        etype: type[BaseException] | None,
        evalue: BaseException | None,
        etb: TracebackType | None,
        /,
    ) -> bool | None: ...

    def close(self) -> None: ...
