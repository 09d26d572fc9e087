"""The named writes of several people at one table: seats and the chat's queue of turns.

A queued turn is kept in ``turn_queue``, outside the log: it is not part of
the story until it runs, when its ``user_turn`` is appended and its row
removed in one transaction. Each change of the queue is told to the chat's
watchers as a ``turn_queued`` with the whole queue, numbered like any chat
message, in the same transaction as the change.
"""

from __future__ import annotations

from protocol import ChatMessage, SeatTaken, TurnQueued
from protocol import events as ev

from ._commands import record_first
from ._records import AppendResult
from ._store import Store
from ._writes import add_user_turn


def take_seat(s: Store, seat: ev.SeatTaken) -> AppendResult:
    """A persona sits down at a chat's table for the first time; told as ``seat_taken``."""

    def told(_ids: tuple[int, ...]) -> list[SeatTaken]:
        persona = s.get_persona(seat.persona_id)
        assert persona is not None  # the projection checked it
        return [SeatTaken(seat.chat_id, persona)]

    return s.append(seat, render=told)


def _told(s: Store, chat_id: str) -> tuple[ChatMessage, ...]:
    """The chat's queue as it is now, told (inside the caller's transaction)."""
    return s.record([TurnQueued(chat_id, s.queued_turns(chat_id))])


def queue_turn(
    s: Store, chat_id: str, person_id: str, prose: str, reply_as: str | None
) -> AppendResult:
    """Put a turn at the end of the chat's queue; ``ids`` holds its queue id."""
    with s.transaction():
        s.conn.execute(
            "INSERT INTO turn_queue(chat_id, person_id, prose, reply_as, at) "
            "VALUES (?, ?, ?, ?, ?)",
            (chat_id, person_id, prose, reply_as, s.now()),
        )
        queue_id = s.conn.last_insert_rowid()
        if s.command is not None:
            # A queued turn has no event yet: its command is recorded with the queue row.
            record_first(s.conn, s.command, 0)
        return AppendResult((queue_id,), _told(s, chat_id))


def drop_queued(s: Store, chat_id: str, queue_ids: tuple[int, ...]) -> AppendResult:
    """Take turns out of the chat's queue (their person cancelled them, or they cannot run)."""
    if not queue_ids:
        return AppendResult(())
    with s.transaction():
        for queue_id in queue_ids:
            s.conn.execute(
                "DELETE FROM turn_queue WHERE chat_id = ? AND id = ?", (chat_id, queue_id)
            )
        return AppendResult(queue_ids, _told(s, chat_id))


def start_queued(s: Store, queue_id: int, said: ev.UserTurn) -> AppendResult:
    """The queue's next turn runs: its ``user_turn`` is appended as its row goes, atomically."""
    with s.transaction():
        s.conn.execute(
            "DELETE FROM turn_queue WHERE chat_id = ? AND id = ?", (said.chat_id, queue_id)
        )
        written = add_user_turn(s, said)
        return AppendResult(written.ids, (*written.messages, *_told(s, said.chat_id)))
