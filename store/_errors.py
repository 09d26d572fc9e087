"""Errors of the store: the caller asked for something that cannot be written."""

from __future__ import annotations


class StoreError(Exception):
    """Base of the store's errors; nothing was written."""


class NotFound(StoreError):
    """The chat, bot, event, memory or scene referred to does not exist."""


class Invalid(StoreError):
    """Well-formed, but not allowed in the current state."""
