"""The actor system: the top supervisor, spawning, registries and shutdown."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import trio

from ._actor import Actor
from ._cell import Cell
from ._errors import ActorStopped
from ._policy import DEFAULT_POLICY, RestartPolicy
from ._ref import ActorRef
from ._statistics import SystemStatistics

if TYPE_CHECKING:
    from ._registry import Registry

log = logging.getLogger("troupe.runtime")


class ActorSystem:
    """Owns every actor's lifetime and shuts them all down within a bound.

    It is the supervisor of top-level actors: a child that exceeds its
    restart intensity is logged and left stopped (``failed``); every other
    actor keeps running. Build one with :func:`open_actor_system`.
    """

    def __init__(self, nursery: trio.Nursery, shutdown_timeout: float) -> None:
        if shutdown_timeout <= 0:
            raise ValueError(f"shutdown_timeout must be positive, got {shutdown_timeout}")
        self._nursery = nursery
        self.shutdown_timeout = shutdown_timeout
        self._cells: dict[str, Cell] = {}
        self._registries: dict[str, Registry] = {}
        self._closing = False
        self._closed = trio.Event()

    @property
    def closing(self) -> bool:
        """True once shutdown has begun: no new actor starts."""
        return self._closing

    def _new_cell(
        self,
        factory: Callable[[], Actor],
        address: str,
        policy: RestartPolicy,
        mailbox_size: int,
        idle_timeout: float | None = None,
        parent: Cell | None = None,
    ) -> Cell:
        """Register a cell at ``address``; the caller runs it in a nursery of its choice."""
        if self._closing:
            raise ActorStopped(f"the actor system is shutting down; {address} was not started")
        if address in self._cells:
            raise ValueError(f"an actor already runs at {address}")
        cell = Cell(self, address, factory, policy, mailbox_size, idle_timeout, parent)
        self._cells[address] = cell
        cell.on_finished.append(self._forget)
        return cell

    def _forget(self, cell: Cell) -> None:
        if self._cells.get(cell.address) is cell:
            del self._cells[cell.address]

    def _start(
        self,
        factory: Callable[[], Actor],
        address: str,
        policy: RestartPolicy,
        mailbox_size: int,
        idle_timeout: float | None = None,
    ) -> Cell:
        """Start a top-level actor without waiting (registries need this to be atomic)."""
        cell = self._new_cell(factory, address, policy, mailbox_size, idle_timeout)
        self._nursery.start_soon(cell.run, name=address)
        return cell

    async def spawn(
        self,
        factory: Callable[[], Actor],
        address: str,
        policy: RestartPolicy = DEFAULT_POLICY,
        mailbox_size: int = 64,
    ) -> ActorRef:
        """Start a top-level actor at ``address``; ``factory`` builds each (re)started instance.

        Messages may be sent at once; they wait in the mailbox until
        ``on_start`` has run. Raises ``ValueError`` when the address is taken.
        """
        cell = self._start(factory, address, policy, mailbox_size)
        await trio.lowlevel.checkpoint()
        return ActorRef(cell)

    def registry(
        self,
        kind: str,
        factory: Callable[[str], Actor],
        idle_timeout: float | None = None,
        policy: RestartPolicy = DEFAULT_POLICY,
        mailbox_size: int = 64,
        on_passivated: Callable[[str], None] | None = None,
    ) -> Registry:
        """Actors addressed ``<kind>:<key>``, spawned on their first message.

        With ``idle_timeout``, an actor with no message and no work for that
        long saves (``on_passivate``) and stops; its next message starts it
        again (``on_start``). ``on_passivated(key)`` is called once it has.
        """
        from ._registry import Registry

        if kind in self._registries:
            raise ValueError(f"a registry of kind {kind!r} already exists")
        registry = Registry(self, kind, factory, idle_timeout, policy, mailbox_size, on_passivated)
        self._registries[kind] = registry
        return registry

    def actor(self, address: str) -> ActorRef | None:
        """The running actor at ``address``, if any."""
        cell = self._cells.get(address)
        return None if cell is None else ActorRef(cell)

    def statistics(self) -> SystemStatistics:
        """Every live actor's figures (by address), and each registry's."""
        return SystemStatistics(
            actors={address: cell.statistics() for address, cell in self._cells.items()},
            registries={kind: r.statistics() for kind, r in self._registries.items()},
        )

    async def shutdown(self, drain: bool = False, timeout: float | None = None) -> None:
        """Stop every actor and return within ``timeout`` (default: ``shutdown_timeout``).

        Without ``drain`` every actor is cancelled now. With ``drain`` each
        first handles what its mailbox holds, for at most half the bound;
        whatever is still running then is cancelled. Every actor's
        ``on_stop`` runs shielded, its deadline capped by the bound, so a
        stuck actor or a stuck cleanup cannot hold shutdown past it.
        Calling it again waits for the first call.
        """
        if self._closing:
            await self._closed.wait()
            return
        self._closing = True
        bound = self.shutdown_timeout if timeout is None else timeout
        deadline = trio.current_time() + bound
        for cell in self._cells.values():
            cell.hard_deadline = deadline
        top = [cell for cell in self._cells.values() if cell.parent is None]
        try:
            if drain:
                with trio.move_on_at(trio.current_time() + bound / 2):
                    async with trio.open_nursery() as nursery:
                        for cell in top:
                            nursery.start_soon(cell.stop, True)
            for cell in top:
                cell.stopping = True
                cell.scope.cancel()
            with trio.move_on_at(deadline) as late:
                for cell in top:
                    await cell.finished.wait()
            if late.cancelled_caught:
                log.error("shutdown: some actors did not stop within %.1fs", bound)
        finally:
            self._closed.set()


@asynccontextmanager
async def open_actor_system(shutdown_timeout: float = 10.0) -> AsyncIterator[ActorSystem]:
    """Run an actor system for the duration of the block; shut it down on exit.

    Leaving the block shuts the system down without drain (call
    ``await system.shutdown(drain=True)`` first to drain); leaving takes at
    most ``shutdown_timeout`` seconds however the actors behave.
    """
    async with trio.open_nursery() as nursery:
        system = ActorSystem(nursery, shutdown_timeout)
        try:
            yield system
        finally:
            with trio.CancelScope(shield=True):
                await system.shutdown(drain=False)
            nursery.cancel_scope.cancel()


__all__ = ["ActorSystem", "open_actor_system"]
