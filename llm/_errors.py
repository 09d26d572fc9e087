"""Errors of the model backends: the backend failed or lied, never the caller."""

from __future__ import annotations


class ModelError(Exception):
    """The model backend failed; what it said so far still counts."""


class ModelLength(ModelError):
    """The reply reached its token cap (``max_tokens``) before it ended.

    Raised after the last chunk; the backend that raises it has ended the
    text at its last whole sentence.
    """


class ModelTimeout(ModelError):
    """No connection, no first token, or no end within the time allowed."""


class ModelStalled(ModelTimeout):
    """The stream stopped sending tokens for longer than the stall timeout."""


class ModelHTTPError(ModelError):
    """The server answered with an error status or an error object."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ModelProtocolError(ModelError):
    """The server's stream was malformed or cut."""


class ModelOutputError(ModelError):
    """The model's output is not the JSON the schema asks for."""
