"""Registries: actors addressed by key, activated on first message, passivated when idle."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from ._actor import Actor
from ._cell import Cell
from ._policy import RestartPolicy
from ._ref import DEFAULT_ASK_TIMEOUT, ActorRef
from ._statistics import ActorStatistics, RegistryStatistics
from ._system import ActorSystem

log = logging.getLogger("troupe.runtime")


class Registry:
    """Get-or-spawn by key, exactly one activation per key at a time, passivation when idle.

    Activation is synchronous (no checkpoint between looking a key up and
    registering its new actor), so first messages that race all reach the
    same single activation. A passivating actor keeps its mailbox open while
    ``on_passivate`` saves: a message arriving then wakes the same actor up
    again (``on_start`` reloads) instead of being lost or starting a second
    copy. Once its mailbox is closed, the next message starts a fresh one.

    An actor that exceeded its restart intensity is left down; like a
    passivated one, it starts afresh (with a fresh restart window) on its
    next message.

    ``on_passivated(key)``, if given, is called once a key's actor has
    passivated (its mailbox closed, nothing of it running), so that whoever
    keeps something per live key can let it go; it must not block.
    """

    def __init__(
        self,
        system: ActorSystem,
        kind: str,
        factory: Callable[[str], Actor],
        idle_timeout: float | None,
        policy: RestartPolicy,
        mailbox_size: int,
        on_passivated: Callable[[str], None] | None = None,
    ) -> None:
        self.system = system
        self.kind = kind
        self.factory = factory
        self.idle_timeout = idle_timeout
        self.policy = policy
        self.mailbox_size = mailbox_size
        self.on_passivated = on_passivated
        self._active: dict[str, Cell] = {}
        # Keys currently passivated: one string per key ever seen and idle,
        # the price of reporting how many actors sleep.
        self._passivated: set[str] = set()
        self.activations = 0
        self.passivations = 0

    def key_of(self, key: str) -> str:
        """``"chat:42"`` and ``"42"`` both name key ``"42"`` of registry ``chat``."""
        prefix = f"{self.kind}:"
        return key[len(prefix) :] if key.startswith(prefix) else key

    def get(self, key: str) -> RegistryRef:
        """A reference to the actor at ``key``; it is (re)activated by the next send."""
        return RegistryRef(self, self.key_of(key))

    def cell(self, key: str) -> Cell:
        """The live actor at ``key``, activating it if needed (never checkpoints)."""
        cell = self._active.get(key)
        if cell is not None and not cell.finished.is_set():
            # Even a stopping actor: a second copy must never run beside it.
            return cell
        return self._activate(key)

    def live(self, key: str) -> Cell | None:
        """The live actor at ``key``, without activating it."""
        cell = self._active.get(key)
        return None if cell is None or cell.finished.is_set() else cell

    def _activate(self, key: str) -> Cell:
        factory = self.factory
        address = f"{self.kind}:{key}"
        cell = self.system._new_cell(
            lambda: factory(key),
            address,
            self.policy,
            self.mailbox_size,
            self.idle_timeout,
        )
        self._active[key] = cell
        self._passivated.discard(key)

        def activated() -> None:
            self.activations += 1

        def finished(done: Cell) -> None:
            if self._active.get(key) is done:
                del self._active[key]
            if done.state == "passivated":
                self._passivated.add(key)
                self.passivations += 1
                if self.on_passivated is not None and key not in self._active:
                    try:
                        self.on_passivated(key)
                    except Exception:
                        log.exception("%s: the passivation hook failed", address)

        cell.on_activate = activated
        cell.on_finished.append(finished)
        self.system._nursery.start_soon(cell.run, name=address)
        return cell

    def active(self) -> list[str]:
        """Keys with a live actor."""
        return [key for key, cell in self._active.items() if not cell.finished.is_set()]

    def statistics(self) -> RegistryStatistics:
        """``active`` and ``passivated`` keys now; ``activations`` and ``passivations`` so far.

        Activations count every ``on_start`` of a fresh or passivated actor,
        not restarts after a crash (see the actor's own ``restarts``).
        """
        return RegistryStatistics(
            active=len(self.active()),
            passivated=len(self._passivated),
            activations=self.activations,
            passivations=self.passivations,
        )


class RegistryRef:
    """Like :class:`ActorRef`, for a registry key: it activates the actor when needed."""

    __slots__ = ("key", "registry")

    def __init__(self, registry: Registry, key: str) -> None:
        self.registry = registry
        self.key = key

    @property
    def address(self) -> str:
        """``<kind>:<key>``."""
        return f"{self.registry.kind}:{self.key}"

    def __repr__(self) -> str:
        return f"<RegistryRef {self.address}>"

    def ref(self) -> ActorRef:
        """The current activation's :class:`ActorRef`, activating it if needed."""
        return ActorRef(self.registry.cell(self.key))

    def current(self) -> ActorRef | None:
        """The current activation's :class:`ActorRef`, or None when not active (never activates).

        For messages that only concern a live actor, such as telling it to
        stop what it is doing: a passivated key is not woken up just for that.
        """
        cell = self.registry.live(self.key)
        return None if cell is None else ActorRef(cell)

    async def tell(self, message: object) -> None:
        """Send, activating the actor if needed; waits while its mailbox is full."""
        await self.ref().tell(message)

    def tell_nowait(self, message: object) -> None:
        """Send without waiting, activating the actor if needed; :class:`MailboxFull` if full."""
        self.ref().tell_nowait(message)

    async def ask(self, message: object, timeout: float = DEFAULT_ASK_TIMEOUT) -> Any:
        """Ask, activating the actor if needed; see :meth:`ActorRef.ask`."""
        return await self.ref().ask(message, timeout)

    async def stop(self, drain: bool = True) -> None:
        """Stop the actor if it is live (no save: ``on_passivate`` is for idling out)."""
        cell = self.registry.live(self.key)
        if cell is not None:
            await cell.stop(drain)

    def statistics(self) -> ActorStatistics | None:
        """The live actor's figures, or None when it is not active."""
        cell = self.registry.live(self.key)
        return None if cell is None else cell.statistics()


__all__ = ["Registry", "RegistryRef"]
