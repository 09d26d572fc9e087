"""Errors of the store: what cannot be written, and why (a bad request, or a full disk)."""

from __future__ import annotations


class StoreError(Exception):
    """Base of the store's errors; nothing was written."""


class NotFound(StoreError):
    """The chat, bot, event, memory or scene referred to does not exist."""


class Invalid(StoreError):
    """Well-formed, but not allowed in the current state."""


class StorageFull(StoreError):
    """The disk holding the database is full (or the database reached its size limit).

    Nobody's request was wrong: the server ran out of space. Nothing of the
    write was kept, and writes work again, without a restart, once space is
    freed.
    """
