"""The store's SQL, written for SQLite, rewritten once per statement for PostgreSQL.

The store's statements are mostly portable already (``ON CONFLICT`` upserts,
``count(*) FILTER``, ``coalesce``); what differs is rewritten here, each
rule a small, named one:

- ``?`` and ``?N`` parameters become psycopg's ``%s`` (a literal ``%``
  becomes ``%%``), with the order in which the given parameters are read;
- ``BEGIN IMMEDIATE`` is ``BEGIN`` (PostgreSQL locks rows, not the file);
- ``json_extract(col, '$.key')`` is ``(col::json ->> 'key')`` and
  ``json_each(col)`` the set of the array's texts;
- ``INDEXED BY`` hints go (PostgreSQL's planner picks its index);
- an ``INSERT`` into a table whose id the database hands out gets
  ``RETURNING id``, which :meth:`PgConnection.last_insert_rowid` answers;
- the full-text search: ``memories_fts MATCH ?`` is a ``tsvector`` match of
  the same query (``websearch_to_tsquery`` reads FTS5's quoted words joined by
  ``OR`` the same way), ranked by ``ts_rank`` instead of ``bm25``.

Statements with no such rewrite are written at their source in a form both
databases run alike. Each rewrite is made once and kept, keyed by its text.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Final

from attrs import frozen

AUTO_IDS: Final = ("event_log", "turn_queue")
"""Tables whose ``id`` the database hands out (``last_insert_rowid`` is read after them)."""

_WORDS: Final = "websearch_to_tsquery('simple', {})"


@frozen
class Statement:
    """A statement for PostgreSQL: its text, and which given parameter each ``%s`` takes."""

    sql: str
    order: tuple[int, ...]
    returns_id: bool

    def bind(self, bindings: object) -> tuple[object, ...]:
        """The parameters in the statement's order (SQLite's ``?1`` may be read twice)."""
        if bindings is None:
            given: tuple[object, ...] = ()
        elif isinstance(bindings, tuple | list):
            given = tuple(bindings)
        else:
            raise TypeError("the store binds parameters by position")
        if len(self.order) == len(given) and self.order == tuple(range(len(given))):
            return given
        return tuple(given[i] for i in self.order)


_JSON_EXTRACT = re.compile(r"json_extract\(\s*([\w.]+)\s*,\s*'\$\.(\w+)'\s*\)")
_JSON_EACH = re.compile(r"json_each\((\w+)\)")
_INDEXED_BY = re.compile(r"\s+INDEXED BY \w+")
_MATCH = re.compile(r"(\w+) MATCH (\?\d*)")
_BM25 = re.compile(r"bm25\((\w+)\)")
_TOKENS = re.compile(r"'(?:[^']|'')*'|\"[^\"]*\"|\?(\d*)|%")
_INSERT = re.compile(r"^\s*INSERT INTO (\w+)", re.IGNORECASE)


@lru_cache(maxsize=4096)
def translate(sql: str) -> Statement:
    """The PostgreSQL form of one statement of the store."""
    if sql.strip().upper() == "BEGIN IMMEDIATE":
        return Statement("BEGIN", (), False)
    text = _JSON_EXTRACT.sub(r"(\1::json ->> '\2')", sql)
    text = _JSON_EACH.sub(r"json_array_elements_text(\1::json) AS json_each(value)", text)
    text = _INDEXED_BY.sub("", text)
    text = _search(text)
    text, order = _placeholders(text)
    insert = _INSERT.match(text)
    returns_id = bool(insert and insert.group(1) in AUTO_IDS and "RETURNING" not in text.upper())
    if returns_id:
        text += " RETURNING id"
    return Statement(text, order, returns_id)


def _search(sql: str) -> str:
    """FTS5's ``t MATCH ?`` and ``bm25(t)``: the same query against ``t.terms``."""
    match = _MATCH.search(sql)
    if match is None:
        return sql
    table, param = match.groups()
    if param == "?":
        raise ValueError("a full-text search names its query's parameter (?1) to rank by it")
    query = _WORDS.format(param)
    sql = _MATCH.sub(f"{table}.terms @@ {query}", sql)
    return _BM25.sub(lambda m: f"-ts_rank({m.group(1)}.terms, {query})", sql)


def _placeholders(sql: str) -> tuple[str, tuple[int, ...]]:
    """``?`` and ``?N`` as ``%s``, with the index each reads; quoted text left alone."""
    order: list[int] = []
    following = 0

    def one(token: re.Match[str]) -> str:
        nonlocal following
        text = token.group(0)
        if text == "%":
            return "%%"
        if not text.startswith("?"):
            return text  # a string literal or a quoted name
        index = int(token.group(1)) - 1 if token.group(1) else following
        following = max(following, index + 1)
        order.append(index)
        return "%s"

    return _TOKENS.sub(one, sql), tuple(order)
