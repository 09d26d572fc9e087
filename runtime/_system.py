"""The actor system: the top supervisor, spawning, registries and shutdown."""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import trio

from ._actor import Actor, ActorRef, _Cell, _Envelope
from ._errors import ActorStopped, MailboxFull
from ._policy import RestartPolicy

log = logging.getLogger("troupe.runtime")


class ActorSystem:
    """Owns every actor's lifetime; supervises them and shuts them down within a bound."""

    def __init__(self, nursery: trio.Nursery, shutdown_timeout: float) -> None:
        self._nursery = nursery
        self.shutdown_timeout = shutdown_timeout
        self._cells: dict[str, _Cell] = {}
        self._registries: dict[str, Registry] = {}
        self.closing = False

    def _start(
        self,
        factory: Callable[[], Actor],
        address: str,
        policy: RestartPolicy,
        mailbox_size: int,
        idle_timeout: float | None = None,
    ) -> _Cell:
        if self.closing:
            raise ActorStopped("the actor system is shutting down")
        if address in self._cells and not self._cells[address].finished.is_set():
            raise ValueError(f"an actor already runs at {address}")
        cell = _Cell(
            address,
            factory,
            policy,
            mailbox_size,
            idle_timeout,
            stop_timeout=self.shutdown_timeout,
        )
        self._cells[address] = cell

        async def run() -> None:
            try:
                await cell.run()
            finally:
                if self._cells.get(address) is cell:
                    del self._cells[address]

        self._nursery.start_soon(run, name=address)
        return cell

    async def spawn(
        self,
        factory: Callable[[], Actor],
        address: str,
        policy: RestartPolicy = RestartPolicy(),
        mailbox_size: int = 64,
    ) -> ActorRef:
        """Start an actor at ``address``; the factory builds each (re)started instance."""
        cell = self._start(factory, address, policy, mailbox_size)
        await trio.lowlevel.checkpoint()
        return ActorRef(cell)

    def registry(
        self,
        kind: str,
        factory: Callable[[str], Actor],
        idle_timeout: float | None = None,
        policy: RestartPolicy = RestartPolicy(),
        mailbox_size: int = 64,
    ) -> Registry:
        """Actors addressed ``kind:key``, spawned on their first message."""
        registry = Registry(self, kind, factory, idle_timeout, policy, mailbox_size)
        self._registries[kind] = registry
        return registry

    def statistics(self) -> dict[str, Any]:
        """Every running actor's figures, and the registries'."""
        return {
            "actors": {a: c.statistics() for a, c in self._cells.items()},
            "registries": {k: r.statistics() for k, r in self._registries.items()},
        }

    async def shutdown(self, drain: bool = False, timeout: float | None = None) -> None:
        """Stop every actor (after its mailbox, with ``drain``), within ``timeout``."""
        self.closing = True
        bound = self.shutdown_timeout if timeout is None else timeout
        cells = list(self._cells.values())
        with trio.move_on_after(bound) as scope:
            async with trio.open_nursery() as nursery:
                for cell in cells:
                    nursery.start_soon(cell.stop, drain)
        if scope.cancelled_caught:
            log.warning("shutdown took over %.1fs; cancelling what is left", bound)
            for cell in cells:
                cell.scope.cancel()


@asynccontextmanager
async def open_actor_system(shutdown_timeout: float = 10.0) -> AsyncIterator[ActorSystem]:
    """Run an actor system for the duration of the block; shut it down on exit."""
    async with trio.open_nursery() as nursery:
        system = ActorSystem(nursery, shutdown_timeout)
        try:
            yield system
        finally:
            with trio.CancelScope(shield=True):
                await system.shutdown(drain=False)
            nursery.cancel_scope.cancel()


class Registry:
    """Get-or-spawn by key, exactly one activation per key, passivation when idle."""

    def __init__(
        self,
        system: ActorSystem,
        kind: str,
        factory: Callable[[str], Actor],
        idle_timeout: float | None,
        policy: RestartPolicy,
        mailbox_size: int,
    ) -> None:
        self.system = system
        self.kind = kind
        self.factory = factory
        self.idle_timeout = idle_timeout
        self.policy = policy
        self.mailbox_size = mailbox_size
        self._active: dict[str, _Cell] = {}
        self._leaving: dict[str, _Cell] = {}
        self.activations = 0
        self.passivations = 0

    def _key(self, key: str) -> str:
        prefix = f"{self.kind}:"
        return key[len(prefix) :] if key.startswith(prefix) else key

    def get(self, key: str) -> RegistryRef:
        """A reference to the actor at ``key``; it is spawned on first use."""
        return RegistryRef(self, self._key(key))

    def _cell_now(self, key: str) -> _Cell | None:
        cell = self._active.get(key)
        if cell is not None and cell.state in ("passivating", "passivated", "stopped", "failed"):
            return None
        return cell

    async def _cell(self, key: str) -> _Cell:
        cell = self._cell_now(key)
        if cell is not None:
            return cell
        leaving = self._leaving.get(key)
        if leaving is not None:
            # Its on_passivate may still be saving: load only after it is done.
            await leaving.finished.wait()
            cell = self._cell_now(key)
            if cell is not None:
                return cell
        return self._activate(key)

    def _activate(self, key: str) -> _Cell:
        factory = self.factory
        cell = self.system._start(
            lambda: factory(key),
            f"{self.kind}:{key}",
            self.policy,
            self.mailbox_size,
            self.idle_timeout,
        )
        self.activations += 1
        self._active[key] = cell

        def passivating() -> None:
            self.passivations += 1
            if self._active.get(key) is cell:
                del self._active[key]
            self._leaving[key] = cell

        def leftover(envelopes: list[_Envelope]) -> None:
            fresh = self._cell_now(key) or self._activate(key)
            for envelope in envelopes:
                try:
                    fresh.send_nowait(envelope)
                except (MailboxFull, ActorStopped):
                    log.error("%s: a message was lost while passivating", cell.address)

        async def forget() -> None:
            await cell.finished.wait()
            if self._leaving.get(key) is cell:
                del self._leaving[key]
            if self._active.get(key) is cell:
                del self._active[key]

        cell.on_passivating = passivating
        cell.on_leftover = leftover
        self.system._nursery.start_soon(forget)
        return cell

    def active(self) -> list[str]:
        """Keys with a live actor."""
        return [k for k in self._active if self._cell_now(k) is not None]

    def statistics(self) -> dict[str, Any]:
        """Active keys, activations and passivations so far."""
        return {
            "active": len(self.active()),
            "activations": self.activations,
            "passivations": self.passivations,
        }


class RegistryRef:
    """Like :class:`ActorRef`, for a registry key: activates the actor when needed."""

    def __init__(self, registry: Registry, key: str) -> None:
        self.registry = registry
        self.key = key

    @property
    def address(self) -> str:
        """``kind:key``."""
        return f"{self.registry.kind}:{self.key}"

    async def _ref(self) -> ActorRef:
        return ActorRef(await self.registry._cell(self.key))

    async def tell(self, message: object) -> None:
        """Send, activating the actor if needed; waits while its mailbox is full."""
        await (await self._ref()).tell(message)

    def tell_nowait(self, message: object) -> None:
        """Send without waiting; activates the actor if needed."""
        cell = self.registry._cell_now(self.key)
        if cell is None:
            if self.key in self.registry._leaving:
                raise MailboxFull(f"{self.address} is passivating; try again")
            cell = self.registry._activate(self.key)
        ActorRef(cell).tell_nowait(message)

    async def ask(self, message: object, timeout: float = math.inf) -> Any:
        """Ask, activating the actor if needed."""
        with trio.fail_after(timeout) if math.isfinite(timeout) else _nothing():
            ref = await self._ref()
        return await ref.ask(message, timeout)

    async def stop(self, drain: bool = True) -> None:
        """Stop the actor if it runs."""
        cell = self.registry._cell_now(self.key)
        if cell is not None:
            await cell.stop(drain)

    def statistics(self) -> dict[str, Any] | None:
        """The actor's figures, or None when it is not active."""
        cell = self.registry._cell_now(self.key)
        return None if cell is None else cell.statistics()


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None
