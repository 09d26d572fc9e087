"""Errors of the actor runtime.

``ActorError`` is the base of all of them. Which side is at fault differs:
``MailboxFull`` and ``AskTimeout`` are load (the caller may retry later),
``ActorStopped`` means the caller addressed an actor that is gone, and
``ActorFailed`` / ``RestartIntensityExceeded`` mean the actor's own code broke.
"""

from __future__ import annotations


class ActorError(Exception):
    """Base of every error the runtime raises."""


class MailboxFull(ActorError):
    """``tell_nowait`` found the mailbox full; the message was not sent.

    The caller decides what to do with it: retry later, use ``tell`` (which
    waits for room), or drop it.
    """


class AskTimeout(ActorError, TimeoutError):
    """No reply came within the ask's timeout.

    A message still queued is skipped when its turn comes; one the actor was
    already handling runs to its end and its reply is dropped.
    """


class ActorFailed(ActorError):
    """The actor crashed while or before handling the message; ``__cause__`` is the crash."""


class ActorStopped(ActorError):
    """The actor is stopped (or stopping) and takes no more messages."""


class RestartIntensityExceeded(ActorError):
    """An actor crashed more often than its restart policy allows; it stays down.

    A child actor raises this into its parent, which then crashes in turn and
    is handled by its own supervisor; at top level it is logged and the actor
    is left stopped in the ``failed`` state.
    """
