"""A connection cap shared by every caller, in three priorities.

Narrative beats go first, then the classifier passes a turn waits on
(``critical``: who answers, who interjects, how the relations moved, ...),
then the background ones nobody waits on (significance scoring). Within a
priority, waiters are served first come, first served.

Slots are taken the way :class:`trio.CapacityLimiter` takes them: a caller
whose scope is already cancelled raises before touching the count; a free
slot is taken and then a cancel-shielded checkpoint is made, so a cancel
cannot land between taking and returning; a waiter is handed its slot by the
releaser (the count does not move), and a waiter found cancelled at the
moment it is handed one passes it straight on. The only way a slot is ever
held is that ``acquire`` returned normally.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio

from ._statistics import LimiterStatistics
from ._types import ClassifierRequest


class Priority(enum.IntEnum):
    """Who goes first for a slot: the lower the value, the sooner."""

    NARRATIVE = 0
    """A beat someone is watching stream."""
    CRITICAL = 1
    """A classifier pass a turn waits on (the addressee, the state updates, ...)."""
    BACKGROUND = 2
    """A classifier call nobody waits on (significance scoring)."""


def priority_of(level: Priority | bool | None, urgent: bool | None = None) -> Priority:
    """The priority asked for; ``True`` (or ``urgent=True``) is narrative and ``False``
    background: the two-level spelling, still taken."""
    if level is None:
        if urgent is None:
            raise TypeError("a slot needs a priority")
        level = urgent
    if isinstance(level, Priority):
        return level
    return Priority.NARRATIVE if level else Priority.BACKGROUND


def classifier_priority(request: ClassifierRequest) -> Priority:
    """The priority a backend gives a classifier call: critical if a turn waits on it."""
    return Priority.CRITICAL if request.critical else Priority.BACKGROUND


class PriorityLimiter:
    """At most ``capacity`` holders; a freed slot goes to the most urgent waiter."""

    def __init__(self, capacity: int) -> None:
        self.capacity = max(1, capacity)
        self._in_use = 0
        # One lot per priority, most urgent first.
        self._lots = tuple(trio.lowlevel.ParkingLot() for _ in Priority)

    @property
    def in_use(self) -> int:
        """Slots held now (never more than ``capacity``)."""
        return self._in_use

    async def acquire(
        self, priority: Priority | bool | None = None, *, urgent: bool | None = None
    ) -> None:
        """Wait for a slot; on return the caller holds one and must :meth:`release` it.

        Cancelled before the slot is held, it raises and holds nothing.
        """
        lot = self._lots[priority_of(priority, urgent)]
        await trio.lowlevel.checkpoint_if_cancelled()
        if self._in_use < self.capacity and not any(self._lots):
            self._in_use += 1
            # A schedule point that no cancel can interrupt: the slot is ours.
            await trio.lowlevel.cancel_shielded_checkpoint()
            return
        # Cancelled while parked, the task leaves the lot holding nothing; once
        # unparked by ``release`` it owns the slot that release handed over.
        await lot.park()
        try:
            await trio.lowlevel.checkpoint_if_cancelled()
        except BaseException:
            # Cancelled as the slot was handed to us: pass it on, hold nothing.
            self.release()
            raise

    def release(self) -> None:
        """Give a slot back: to the most urgent waiter, or to the pool."""
        if self._in_use <= 0:
            raise RuntimeError("PriorityLimiter released more often than acquired (a bug)")
        for lot in self._lots:
            if lot.unpark(count=1):
                return  # handed over: still in use, by the waiter now
        self._in_use -= 1

    @asynccontextmanager
    async def slot(
        self, priority: Priority | bool | None = None, *, urgent: bool | None = None
    ) -> AsyncIterator[None]:
        """Hold a slot for the block."""
        await self.acquire(priority, urgent=urgent)
        try:
            yield
        finally:
            self.release()

    def statistics(self) -> LimiterStatistics:
        """Slots in use, capacity, and waiters of each priority."""
        narrative, critical, background = (len(lot) for lot in self._lots)
        return LimiterStatistics(
            in_use=self._in_use,
            capacity=self.capacity,
            waiting_urgent=narrative,
            waiting_background=background,
            waiting_critical=critical,
        )
