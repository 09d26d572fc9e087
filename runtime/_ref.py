"""Actor references: the only way to reach an actor."""

from __future__ import annotations

import math
from typing import Any

import trio

from ._cell import Cell
from ._errors import AskTimeout
from ._mailbox import Reply
from ._statistics import ActorStatistics

DEFAULT_ASK_TIMEOUT = 5.0
"""Seconds an ``ask`` waits for its reply unless told otherwise (OTP's ``call`` default).

A caller whose message legitimately takes longer passes its own ``timeout``;
``math.inf`` waits without a bound and should be reserved for tests.
"""


class ActorRef:
    """The address of a running (or stopped) actor; cheap to copy and to keep.

    A reference stays bound to one cell: once that actor has stopped for
    good, sending raises :class:`ActorStopped`. (A registry's
    :class:`RegistryRef` re-resolves its key on every send instead.)
    """

    __slots__ = ("_cell",)

    def __init__(self, cell: Cell) -> None:
        self._cell = cell

    @property
    def address(self) -> str:
        """The actor's address, e.g. ``chat:42``."""
        return self._cell.address

    def __repr__(self) -> str:
        return f"<ActorRef {self.address} {self._cell.state}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ActorRef) and other._cell is self._cell

    def __hash__(self) -> int:
        return id(self._cell)

    async def tell(self, message: object) -> None:
        """Send without waiting for a reply; waits while the mailbox is full (backpressure)."""
        await self._cell.send((message, None))

    def tell_nowait(self, message: object) -> None:
        """Send without waiting at all; raises :class:`MailboxFull` when full."""
        self._cell.send_nowait((message, None))

    async def ask(self, message: object, timeout: float = DEFAULT_ASK_TIMEOUT) -> Any:
        """Send and wait for the reply.

        Raises :class:`AskTimeout` when no reply comes within ``timeout``
        seconds (default :data:`DEFAULT_ASK_TIMEOUT`; the wait for mailbox
        room counts too), :class:`ActorFailed`
        when the actor crashed while or before handling it (the crash is the
        ``__cause__``), :class:`ActorStopped` when it stopped first, or the
        refusal the actor raised (see ``Actor.replies_with``). A cancelled
        asker leaves nothing behind: its message is skipped if not started,
        and its reply dropped.
        """
        reply = Reply()
        cell = self._cell
        try:
            if timeout == math.inf:
                await cell.send((message, reply))
                await reply.done.wait()
            else:
                # A bare scope rather than trio.fail_after: same effect, half the cost.
                with trio.CancelScope(deadline=trio.current_time() + timeout) as scope:
                    await cell.send((message, reply))
                    await reply.done.wait()
                if scope.cancelled_caught and not reply.done.is_set():
                    reply.abandoned = True
                    raise AskTimeout(f"{self.address} did not answer within {timeout}s")
        except BaseException:
            reply.abandoned = True
            raise
        if reply.error is not None:
            raise reply.error
        return reply.value

    async def stop(self, drain: bool = True) -> None:
        """Stop the actor and wait until it has stopped.

        With ``drain`` the mailbox closes to new messages and what is queued
        is handled first; without, the actor (and its work) is cancelled now.
        Either way ``on_stop`` runs, shielded. Called from inside the actor's
        own ``handle``, it does not wait (the actor ends after this message).
        """
        await self._cell.stop(drain)

    async def wait_stopped(self) -> None:
        """Wait until the actor has stopped for good (stopped, failed or passivated)."""
        await self._cell.finished.wait()

    def statistics(self) -> ActorStatistics:
        """A snapshot of the actor's figures for dashboards and tests (see
        :class:`ActorStatistics`): its state, mailbox depth, messages handled,
        restarts, activations, work and children."""
        return self._cell.statistics()


__all__ = ["DEFAULT_ASK_TIMEOUT", "ActorRef"]
