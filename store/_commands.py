"""The record of idempotent commands: a retried command finds its first run here.

A client may give a writing command a ``command_id``. The first event that
command appends also inserts a row of ``commands`` keyed by ``(chat_id,
command_id)`` (``''`` for a command about no chat), in the same transaction:
the command's first write and its record commit together or not at all, so a
crash can leave neither a written command without its record nor a record
without its write. The command's direct answer is filled in afterwards, by a
small write of its own; a retry returns it (or, if a crash came in between, an
answer derived from ``first_event_id``).

Which command is being written is told to the store by :data:`current_command`,
a context variable the caller sets around the command's store calls; the
store's thread sees it because :class:`~store.AsyncStore` reads it on the trio
side as each call is queued. Only the first append of a command inserts the
row; a later one of the same command checks that the row is still its own.

The table is not a projection: a rebuild or a rewind leaves it alone. A
command that a rewind took off the chat's path was still run once, and its
retry still answers what it answered then: a retry is the same command, never
a new one (a client that wants to say it again sends a new ``command_id``).
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

import attrs

from ._errors import StoreError


@attrs.define
class CommandRun:
    """One run of a command with an id: its key, and the first event it appended so far."""

    chat_id: str
    """The chat the command is about, ``''`` when none."""
    command_id: str
    kind: str
    """The command's wire ``type``, so a retry of another type under the same id is told apart."""
    first_event_id: int | None = None
    """Set by the store when the command's first event (and its record) is written."""


@attrs.frozen
class CommandRecord:
    """A command as the ``commands`` table keeps it."""

    chat_id: str
    command_id: str
    kind: str
    first_event_id: int
    answer: str | None
    """The direct answer as wire JSON (without ``reply_to``); None until it is filled in."""


class CommandTaken(StoreError):
    """Another writer recorded this command first; nothing of this write was kept.

    Ask for the record (:func:`command_record`) and answer what it says.
    """

    code = "busy"


current_command: ContextVar[CommandRun | None] = ContextVar("current_command", default=None)
"""The command whose store calls are being made, if it carries an id."""


def record_first(conn: Any, run: CommandRun, event_id: int) -> None:
    """Record ``run`` with ``event_id`` as its first event, unless one of its events did already.

    Runs inside the append's transaction. Portable SQL (SQLite and PostgreSQL):
    the insert does nothing on a conflict, and the row then read says whose it is.
    """
    conn.execute(
        "INSERT INTO commands(chat_id, command_id, kind, first_event_id) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (chat_id, command_id) DO NOTHING",
        (run.chat_id, run.command_id, run.kind, event_id),
    )
    rows = list(
        conn.execute(
            "SELECT first_event_id FROM commands WHERE chat_id = ? AND command_id = ?",
            (run.chat_id, run.command_id),
        )
    )
    first = int(rows[0][0])
    if first == event_id or first == run.first_event_id:
        run.first_event_id = first
        return
    raise CommandTaken(
        f"command {run.command_id!r} was already run by another writer; its answer stands"
    )


def command_record(conn: Any, chat_id: str, command_id: str) -> CommandRecord | None:
    """The record of a command, or None when it never wrote."""
    rows = list(
        conn.execute(
            "SELECT kind, first_event_id, answer FROM commands "
            "WHERE chat_id = ? AND command_id = ?",
            (chat_id, command_id),
        )
    )
    if not rows:
        return None
    kind, first, answer = rows[0]
    return CommandRecord(chat_id, command_id, str(kind), int(first), answer)


def answer_command(conn: Any, chat_id: str, command_id: str, answer: str) -> None:
    """Keep a recorded command's direct answer (a command that never wrote has no row)."""
    conn.execute(
        "UPDATE commands SET answer = ? WHERE chat_id = ? AND command_id = ?",
        (answer, chat_id, command_id),
    )
