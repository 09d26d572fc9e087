"""Errors of the actor runtime."""

from __future__ import annotations


class ActorError(Exception):
    """Base of every runtime error."""


class MailboxFull(ActorError):
    """``tell_nowait`` found the mailbox full; the message was not sent."""


class AskTimeout(ActorError, TimeoutError):
    """No reply came within the ask's timeout; the reply, if any, is dropped."""


class ActorFailed(ActorError):
    """The actor crashed before it could reply; the crash is the ``__cause__``."""


class ActorStopped(ActorError):
    """The actor is stopped (or stopping) and takes no more messages."""


class RestartIntensityExceeded(ActorError):
    """An actor crashed more often than its restart policy allows; it stays down."""
