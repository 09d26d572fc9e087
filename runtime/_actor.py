"""The actor base class: what an actor's author overrides and may call."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, ClassVar

import trio

from ._errors import ActorStopped
from ._policy import DEFAULT_POLICY, RestartPolicy

if TYPE_CHECKING:
    from ._cell import Cell
    from ._ref import ActorRef


class Actor:
    """Subclass and override :meth:`handle`; messages arrive one at a time, in order.

    The runtime builds a fresh instance from the factory for every
    activation (first start, restart after a crash, reactivation after
    passivation), sets :attr:`address`, then calls :meth:`on_start`.

    Exceptions of the types in ``replies_with`` raised by ``handle`` go back
    to the asker as they are and do not crash the actor (a refusal is an
    answer, not a failure); any other exception crashes it, and its
    supervisor's restart policy decides what follows.
    """

    address: str = ""
    """Where the actor lives, e.g. ``chat:42``; set by the runtime before ``on_start``."""

    replies_with: ClassVar[tuple[type[BaseException], ...]] = ()
    """Exception types that are answers to the asker rather than crashes."""

    cleanup_timeout: ClassVar[float] = 5.0
    """How long ``on_passivate`` + ``on_stop`` may take, shielded from cancellation."""

    _cell: Cell | None = None
    _exit_requested: bool = False

    async def on_start(self) -> None:
        """(Re)load state; runs before the first message of each activation."""

    async def handle(self, message: object) -> object:
        """Handle one message; the return value is the reply to ``ask``."""
        raise NotImplementedError(f"{type(self).__name__} must override handle()")

    async def on_passivate(self) -> None:
        """Save state before the actor idles out; the next ``on_start`` reloads it."""

    async def on_stop(self) -> None:
        """Cleanup that must not be lost (e.g. committing a partial beat).

        Runs at the end of every activation, whether it ended by a stop, a
        crash, a cancellation or passivation; shielded from cancellation and
        bounded by :attr:`cleanup_timeout` (and by the system's shutdown bound).
        """

    def start_work(self, fn: Callable[..., Awaitable[object]], *args: object) -> trio.CancelScope:
        """Run ``fn(*args)`` in the actor's work nursery, beside the mailbox loop.

        Use it for long work (a streamed beat): the actor keeps handling
        messages meanwhile, so a later message can cancel the work through the
        returned scope without stopping the actor. Stopping the actor cancels
        all its work. An exception escaping the work crashes the actor.
        """
        return self._running_cell().start_work(fn, args)

    async def spawn(
        self,
        factory: Callable[[], Actor],
        name: str,
        policy: RestartPolicy = DEFAULT_POLICY,
        mailbox_size: int = 64,
    ) -> ActorRef:
        """Start a child actor at ``<address>/<name>``, supervised by this actor.

        The child lives as long as this activation: it stops when this actor
        stops, crashes or passivates (build children again in ``on_start``).
        If the child exceeds its restart intensity, this actor crashes with
        :class:`RestartIntensityExceeded`, and its own supervisor decides.
        """
        cell = self._running_cell()
        child = await cell.spawn_child(factory, name, policy, mailbox_size)
        from ._ref import ActorRef

        return ActorRef(child)

    def self_ref(self) -> ActorRef:
        """A reference to this actor, e.g. for work to tell its results back."""
        from ._ref import ActorRef

        return ActorRef(self._running_cell())

    def exit(self) -> None:
        """End this activation cleanly once the current message is handled.

        Unlike a crash it is not logged as an error; a ``RestartPolicy.always``
        supervisor restarts the actor (counting towards its intensity), the
        others leave it stopped.
        """
        self._exit_requested = True
        cell = self._cell
        if cell is not None:
            cell.wake_loop()

    def _running_cell(self) -> Cell:
        cell = self._cell
        if cell is None or cell.actor is not self or cell.work is None:
            raise ActorStopped(f"actor {self.address or type(self).__name__} is not running")
        return cell


__all__ = ["Actor"]
