"""attrs validators that raise errors the codec can sort into protocol error codes.

The limits are for what comes in (a client's command, an event about to be
written), not for what was written: within :func:`stored_read` they do
not apply, so an event log written under other limits still reads back.
"""

from __future__ import annotations

from collections.abc import Callable, Sized
from contextvars import ContextVar
from typing import Any, TypeVar

import attrs

T = TypeVar("T")

_reading_stored: ContextVar[bool] = ContextVar("reading_stored", default=False)


def limits_apply() -> bool:
    """Whether size and range limits apply: always, except while reading what was stored."""
    return not _reading_stored.get()


def stored_read(read: Callable[[], T]) -> T:
    """``read()``, with values rebuilt as they were stored: types are checked, limits are not."""
    token = _reading_stored.set(True)
    try:
        return read()
    finally:
        _reading_stored.reset(token)


class FieldTooLarge(ValueError):
    """A field is over its size limit: the protocol answers ``too_large``."""


class FieldInvalid(ValueError):
    """A field is of the right type but out of range: the protocol answers ``bad_message``."""


Validator = Callable[[Any, "attrs.Attribute[Any]", Any], None]


def at_most(limit: int) -> Validator:
    """The value (a string or a sequence) has at most ``limit`` items."""

    def check(_inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if isinstance(value, Sized) and len(value) > limit and limits_apply():
            raise FieldTooLarge(
                f"{attribute.name} is {len(value)} long; at most {limit} is allowed"
            )

    return check


def optional_at_most(limit: int) -> Validator:
    """Like :func:`at_most`, but ``None`` passes."""
    inner = at_most(limit)

    def check(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value is not None:
            inner(inst, attribute, value)

    return check


def not_blank(_inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    """A string that is not empty once trimmed."""
    if isinstance(value, str) and not value.strip() and limits_apply():
        raise FieldInvalid(f"{attribute.name} must not be empty")


def in_range(low: int, high: int) -> Validator:
    """An integer between ``low`` and ``high`` inclusive."""

    def check(_inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if not low <= value <= high and limits_apply():
            raise FieldInvalid(f"{attribute.name} must be between {low} and {high}")

    return check


def optional_in_range(low: int, high: int) -> Validator:
    """Like :func:`in_range`, but ``None`` passes."""
    inner = in_range(low, high)

    def check(inst: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value is not None:
            inner(inst, attribute, value)

    return check


def is_text(value: str) -> bool:
    """Whether ``value`` can be written as UTF-8 (JSON escapes can make lone surrogates)."""
    if value.isascii():
        return True  # the common case, and no surrogate is ASCII
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
