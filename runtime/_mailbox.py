"""What travels through a mailbox: the message and, for an ask, its reply slot."""

from __future__ import annotations

import trio


class Reply:
    """A one-shot reply slot for one ask.

    Setting it never blocks, so an actor never waits on its asker; an asker
    that gives up (timeout, cancel) marks it abandoned, and the actor skips
    the message if it has not started it yet.
    """

    __slots__ = ("abandoned", "done", "error", "value")

    def __init__(self) -> None:
        self.done = trio.Event()
        self.value: object = None
        self.error: BaseException | None = None
        self.abandoned = False

    def set(self, value: object = None, error: BaseException | None = None) -> None:
        """Deliver the reply (or an error); only the first call counts."""
        if not self.done.is_set():
            self.value = value
            self.error = error
            self.done.set()

    @property
    def pending(self) -> bool:
        """True while somebody still waits for this reply."""
        return not self.abandoned and not self.done.is_set()


Envelope = tuple[object, Reply | None]
