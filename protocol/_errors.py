"""Refusals: the client's fault (:class:`ProtocolError`), and how a refusal becomes one."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import ClassVar

from ._server import ErrorCode


class ProtocolError(Exception):
    """The client sent something we cannot accept: their fault, answered with ``error``."""

    def __init__(self, code: ErrorCode, message: str, reply_to: str | None = None) -> None:
        super().__init__(message)
        self.code: ErrorCode = code
        self.message = message
        self.reply_to = reply_to


class Refusal(Exception):
    """A request refused below the protocol (by the store, say), with the code that answers it.

    Subclasses name their ``code``; :func:`refusals_answered` turns any of
    them into the :class:`ProtocolError` the client gets. One that names no
    code is not a refusal of the request but a fault, and is left as it is.
    """

    code: ClassVar[ErrorCode]


@contextmanager
def refusals_answered() -> Iterator[None]:
    """Inside, a :class:`Refusal` with a ``code`` is raised again as its :class:`ProtocolError`."""
    try:
        yield
    except Refusal as exc:
        code: ErrorCode | None = getattr(exc, "code", None)
        if code is None:
            raise
        raise ProtocolError(code, str(exc)) from None
