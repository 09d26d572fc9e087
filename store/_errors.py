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
