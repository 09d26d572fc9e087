"""Errors of the store: what cannot be written, and why (a bad request, or a full disk)."""

from __future__ import annotations

from protocol import Refusal


class StoreError(Refusal):
    """Base of the store's errors; nothing was written. ``code`` answers it on the wire."""


class NotFound(StoreError):
    """The chat, bot, event, memory or scene referred to does not exist."""

    code = "not_found"


class Invalid(StoreError):
    """Well-formed, but not allowed in the current state."""

    code = "invalid"


class StorageFull(StoreError):
    """The disk holding the database is full (or the database reached its size limit).

    Nobody's request was wrong: the server ran out of space. Nothing of the
    write was kept, and writes work again, without a restart, once space is
    freed.
    """

    code = "storage_full"


class Unavailable(StoreError):
    """The database cannot be reached now (PostgreSQL restarted, or another writer holds
    the lock too long); nothing was written, and the next call tries again."""

    code = "unavailable"


class Fenced(StoreError):
    """The store's fence refused a write to a chat this process may no longer write.

    Raised by :attr:`Store.fence` from inside the write's transaction, which
    then rolls back whole: nothing of it is kept.
    """

    code = "unavailable"

    def __init__(self, chat_id: str, why: str = "") -> None:
        told = f"chat {chat_id!r} is not ours to write now"
        super().__init__(f"{told}: {why}" if why else told)
        self.chat_id = chat_id
