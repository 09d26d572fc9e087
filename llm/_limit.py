"""A connection cap shared by every caller, narrative calls first.

Slots are taken the way :class:`trio.CapacityLimiter` takes them: a caller
whose scope is already cancelled raises before touching the count; a free
slot is taken and then a cancel-shielded checkpoint is made, so a cancel
cannot land between taking and returning; a waiter is handed its slot by the
releaser (the count does not move), and a waiter found cancelled at the
moment it is handed one passes it straight on. The only way a slot is ever
held is that ``acquire`` returned normally.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio

from ._statistics import LimiterStatistics


class PriorityLimiter:
    """At most ``capacity`` holders; waiting urgent callers go before the others.

    Within each kind, waiters are served first come, first served.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = max(1, capacity)
        self._in_use = 0
        # Two lots: urgent (narrative beats) and background (classifier calls).
        self._urgent = trio.lowlevel.ParkingLot()
        self._background = trio.lowlevel.ParkingLot()

    @property
    def in_use(self) -> int:
        """Slots held now (never more than ``capacity``)."""
        return self._in_use

    async def acquire(self, urgent: bool) -> None:
        """Wait for a slot; on return the caller holds one and must :meth:`release` it.

        Cancelled before the slot is held, it raises and holds nothing.
        """
        await trio.lowlevel.checkpoint_if_cancelled()
        if self._in_use < self.capacity and not (self._urgent or self._background):
            self._in_use += 1
            # A schedule point that no cancel can interrupt: the slot is ours.
            await trio.lowlevel.cancel_shielded_checkpoint()
            return
        lot = self._urgent if urgent else self._background
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
        """Give a slot back: to the next waiter, urgent first, or to the pool."""
        if self._in_use <= 0:
            raise RuntimeError("PriorityLimiter released more often than acquired (a bug)")
        for lot in (self._urgent, self._background):
            if lot.unpark(count=1):
                return  # handed over: still in use, by the waiter now
        self._in_use -= 1

    @asynccontextmanager
    async def slot(self, urgent: bool) -> AsyncIterator[None]:
        """Hold a slot for the block."""
        await self.acquire(urgent)
        try:
            yield
        finally:
            self.release()

    def statistics(self) -> LimiterStatistics:
        """Slots in use, capacity, and waiters of each kind."""
        return LimiterStatistics(
            in_use=self._in_use,
            capacity=self.capacity,
            waiting_urgent=len(self._urgent),
            waiting_background=len(self._background),
        )
