"""What an append needs to know about a chat, kept in memory between appends.

A turn's projection checks that its chat exists and its speaker is a persona
at the chat's table, and writes down who is present; a log row carries its
chat's branch. Read from the tables, that is four lookups for every turn,
two of them costlier than the turn's own rows. So the store keeps these
facts of each chat it writes to (:class:`ChatFacts`), read from the tables
on the first append of the chat, and projects the turns of a chat it knows
with :func:`project_known`.

A fact is only as good as the transaction it was read in. The cache follows
the transactions the store opens (:meth:`FactsCache.transaction`): what a
transaction reads or learns is kept beside the facts already committed, and
joins them only once the transaction commits (a savepoint's, once its
transaction does); a rollback drops it. Inside a transaction someone else
opened, which the cache cannot follow, no fact is read or kept.

An event whose projection may change any of them (the cast, who is present,
who is seated, the branch: any kind not in :data:`KEEPS_FACTS`) drops its
chat's facts, or every chat's for a world-wide one; dropping is always safe,
the next append reads them again. So do a rewind, a fork, a switch, a rebuild
and :meth:`store.Store.forget_chat`.
"""

from __future__ import annotations

from types import TracebackType
from typing import Final

from attrs import frozen

from protocol import YOU_ID
from protocol import events as ev

from ._conn import Connection
from ._project import (
    assistant_line,
    beat_opened,
    current_branch,
    present_json,
    present_now,
    user_line,
)
from ._tx import transaction

MAX_CHATS = 10_000
"""Chats whose facts are kept at the most; the ones learned first go first."""

KEEPS_FACTS: Final = frozenset(
    {
        # the world, apart from a bot's deletion, which takes it out of casts
        "you_updated",
        "bot_created",
        "bot_updated",
        "location_created",
        "bot_card",
        "lorebook_imported",
        "persona_created",
        "persona_updated",
        # a chat's own, apart from its cast, presence, table and branch
        "assistant_turn_started",
        "assistant_turn",
        "beat_continued",
        "memory_written",
        "memory_scored",
        "memory_pinned",
        "memory_unpinned",
        "edge_update",
        "scene_opened",
        "scene_closed",
        "scene_summary",
        "world_event_created",
        "world_event_started",
        "world_event_completed",
        "world_event_cancelled",
        "object_acquired",
        "chat_imported",
        "lorebook_attached",
        "lorebook_detached",
        "author_note_set",
        "chat_settings_updated",
    }
)
"""Event kinds whose projection changes no chat's facts: every other kind drops them.

A user turn keeps them when :func:`project_known` projected it (its speaker
was already seated); one that seats someone new goes through its handler and
drops them. A kind added later drops them until it is listed here.
"""


@frozen
class ChatFacts:
    """What appending to one chat checks and writes, as of a transaction."""

    branch: int
    """The chat's current branch, which its log rows carry."""
    people: frozenset[str]
    """The personas seated at the chat's table (all of them personas, who are never deleted)."""
    present: str
    """Who is in the chat's scene now, as a timeline row keeps it."""


def read_facts(conn: Connection, chat_id: str) -> ChatFacts | None:
    """The chat's facts as the tables hold them now; None when there is no such chat."""
    if not conn.execute("SELECT 1 FROM chats WHERE id = ?", (chat_id,)).fetchall():
        return None
    people = conn.execute("SELECT person_id FROM chat_people WHERE chat_id = ?", (chat_id,))
    return ChatFacts(
        current_branch(conn, chat_id),
        frozenset(row[0] for row in people),
        present_json(present_now(conn, chat_id)),
    )


def project_known(conn: Connection, event_id: int, event: ev.Event, facts: ChatFacts) -> bool:
    """Project a turn of a chat whose facts are known without looking them up again.

    Writes what the event's handler would (the handler's other checks still
    run) and returns True; returns False, having written nothing, for an
    event the facts do not cover: then the handler runs.
    """
    if type(event) is ev.UserTurn:
        person = event.person_id or YOU_ID
        if person not in facts.people:
            return False  # sitting down changes who is present: the handler does it
        user_line(conn, event_id, event, person, _present(event.present, facts))
        return True
    if type(event) is ev.AssistantTurn:
        assistant_line(conn, event_id, event, _present(event.present, facts))
        return True
    if type(event) is ev.AssistantTurnStarted:
        beat_opened(conn, event_id, event)
        return True
    return False


def _present(present: ev.Present, facts: ChatFacts) -> str:
    return facts.present if present is None else present_json(present)


class FactsCache:
    """Each chat's facts as last committed, and what open transactions learned on top."""

    def __init__(self) -> None:
        self._committed: dict[str, ChatFacts] = {}
        self._open: list[dict[str, ChatFacts]] = []
        """One layer per transaction or savepoint opened through :meth:`transaction`."""

    def get(self, conn: Connection, chat_id: str) -> ChatFacts | None:
        """The chat's facts, read from the tables the first time; None when not to be trusted.

        None too when there is no such chat (its events' handlers say so) or
        when no transaction of the cache's is open (see the module's docstring).
        """
        if not self._open:
            return None
        for layer in reversed(self._open):
            facts = layer.get(chat_id)
            if facts is not None:
                return facts
        facts = self._committed.get(chat_id)
        if facts is None:
            facts = read_facts(conn, chat_id)
            if facts is not None:
                self._open[-1][chat_id] = facts
        return facts

    def committed(self) -> dict[str, ChatFacts]:
        """The facts kept once their transaction committed (a copy, for tests and counters)."""
        return dict(self._committed)

    def forget(self, chat_id: str) -> None:
        """Drop the chat's facts, committed or not: the next append reads them again."""
        self._committed.pop(chat_id, None)
        for layer in self._open:
            layer.pop(chat_id, None)

    def forget_all(self) -> None:
        """Drop every chat's facts."""
        self._committed.clear()
        for layer in self._open:
            layer.clear()

    def transaction(self, conn: Connection) -> _Transaction:
        """:class:`store._tx.transaction`, keeping what it learned only if it commits.

        A savepoint's layer joins its transaction's, and the outermost joins
        the committed facts after ``COMMIT`` returned. A transaction opened
        outside the cache's knowledge is run as it is, with no layer: inside
        it :meth:`get` answers None.
        """
        return _Transaction(self, conn)

    def _open_layer(self, conn: Connection) -> bool:
        if not self._open and conn.in_transaction:
            return False  # someone else's transaction: nothing is kept
        self._open.append({})
        return True

    def _close_layer(self, committed: bool) -> None:
        learned = self._open.pop()
        if not committed:
            return
        kept = self._open[-1] if self._open else self._committed
        kept.update(learned)
        if kept is self._committed:
            while len(kept) > MAX_CHATS:
                del kept[next(iter(kept))]


class _Transaction:
    """A transaction of :class:`FactsCache` (a class, not a generator: it is on every append)."""

    __slots__ = ("_cache", "_conn", "_layered", "_tx")

    def __init__(self, cache: FactsCache, conn: Connection) -> None:
        self._cache = cache
        self._conn = conn
        self._tx = transaction(conn)
        self._layered = False

    def __enter__(self) -> None:
        self._layered = self._cache._open_layer(self._conn)
        try:
            self._tx.__enter__()
        except BaseException:
            if self._layered:
                self._cache._close_layer(committed=False)
            raise

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self._tx.__exit__(kind, exc, tb)
        except BaseException:
            if self._layered:
                self._cache._close_layer(committed=False)
            raise
        if self._layered:
            self._cache._close_layer(committed=exc is None)
