"""What was brought from other front ends, read back: cards, avatars, lorebooks, imported chats.

The card and lorebook documents are kept whole in their projection rows
(``bot_cards``, ``lorebooks``) and read with :mod:`story`'s readers, which
is how every field and unknown key comes back out. Avatar images live in
``blobs`` by their sha256; the log names only the hash.
"""

from __future__ import annotations

from typing import Any

import attrs

from protocol import LorebookInfo, LoreProblem, load_event
from protocol import events as ev
from story import Card, Lorebook, read_card_json, read_lorebook_v3, read_world_info

from ._conn import Connection

_LOREBOOK = "SELECT lorebook_id, name, format, document, entries FROM lorebooks"
_IMPORTED = (
    " ORDER BY (SELECT min(id) FROM event_log WHERE kind = 'lorebook_imported' "
    "AND json_extract(payload, '$.lorebook_id') = lorebooks.lorebook_id), lorebook_id"
)
"""Oldest first: in the order of their imports in the log (a table's rowid is SQLite's own)."""


def lorebook_info(book: Lorebook, lorebook_id: str, entries: int | None = None) -> LorebookInfo:
    """A lorebook as the wire lists it, with what in it can never work."""
    problems = tuple(
        LoreProblem(p.entry, f"key {p.key!r}: {p.message}" if p.key else p.message)
        for p in book.problems
    )
    count = len(book.entries) if entries is None else entries
    return LorebookInfo(lorebook_id, book.name, book.format, count, problems)


def read_lorebook(fmt: str, document: str) -> Lorebook:
    """A stored lorebook document read in its own format."""
    if fmt == "lorebook_v3":
        return read_lorebook_v3(document)
    return read_world_info(document)


class Library:
    """The read side of imported cards, avatars, lorebooks and chats (mixed into the store)."""

    conn: Connection

    def _row(self, sql: str, *args: object) -> Any:
        for row in self.conn.execute(sql, args):
            return row
        return None

    def card_of(self, bot_id: str) -> Card | None:
        """The character card a bot was made from, as it was imported; None for other bots."""
        row = self._row("SELECT document FROM bot_cards WHERE bot_id = ?", bot_id)
        return read_card_json(row[0]) if row else None

    def avatar_of(self, bot_id: str) -> tuple[bytes, str] | None:
        """A bot's avatar image and its media type, or None when it has none."""
        row = self._row(
            "SELECT b.data, b.media_type FROM bot_cards c JOIN blobs b ON b.sha256 = c.avatar "
            "WHERE c.bot_id = ?",
            bot_id,
        )
        return (bytes(row[0]), str(row[1])) if row else None

    def lorebook_of(self, lorebook_id: str) -> Lorebook | None:
        """An imported lorebook, read from its document under the name it was listed by."""
        row = self._row(_LOREBOOK + " WHERE lorebook_id = ?", lorebook_id)
        if row is None:
            return None
        return attrs.evolve(read_lorebook(row[2], row[3]), name=row[1])

    def lorebook_info(self, lorebook_id: str) -> LorebookInfo | None:
        """An imported lorebook's wire shape, or None."""
        book = self.lorebook_of(lorebook_id)
        return lorebook_info(book, lorebook_id) if book is not None else None

    def list_lorebooks(self) -> list[LorebookInfo]:
        """Every imported lorebook, oldest first, as the wire lists them."""
        rows: list[Any] = self.conn.execute(_LOREBOOK + _IMPORTED).fetchall()
        return [
            lorebook_info(attrs.evolve(read_lorebook(fmt, doc), name=name), lid, entries)
            for lid, name, fmt, doc, entries in rows
        ]

    def chat_import(self, chat_id: str) -> tuple[int, ev.ChatImported] | None:
        """The ``chat_imported`` event of a chat an import made (its id and payload), or None."""
        row = self._row(
            "SELECT id, payload FROM event_log WHERE chat_id = ? AND kind = 'chat_imported' "
            "AND rewound_by IS NULL ORDER BY id LIMIT 1",
            chat_id,
        )
        if row is None:
            return None
        event = load_event("chat_imported", row[1])
        assert isinstance(event, ev.ChatImported)
        return int(row[0]), event

    def chat_events_after(self, chat_id: str, event_id: int, limit: int) -> list[int]:
        """The ids of the chat's next ``limit`` events after ``event_id``, rewound or not."""
        rows = self.conn.execute(
            "SELECT id FROM event_log WHERE chat_id = ? AND id > ? ORDER BY id LIMIT ?",
            (chat_id, event_id, limit),
        )
        return [int(r[0]) for r in rows]
