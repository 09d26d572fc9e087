"""A connection cap shared by every caller, narrative calls first."""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio


class PriorityLimiter:
    """At most ``capacity`` holders; waiting urgent callers go before the others."""

    def __init__(self, capacity: int) -> None:
        self.capacity = max(1, capacity)
        self.in_use = 0
        self._waiting: tuple[deque[trio.Event], deque[trio.Event]] = (deque(), deque())

    async def acquire(self, urgent: bool) -> None:
        """Wait for a slot."""
        if self.in_use < self.capacity and not any(self._waiting):
            self.in_use += 1
            await trio.lowlevel.checkpoint()
            return
        event = trio.Event()
        queue = self._waiting[0 if urgent else 1]
        queue.append(event)
        try:
            await event.wait()
        except BaseException:
            if event.is_set():
                self.release()  # the slot was handed over as we were cancelled
            else:
                queue.remove(event)
            raise

    def release(self) -> None:
        """Hand the slot to the next waiter, urgent first."""
        for queue in self._waiting:
            if queue:
                queue.popleft().set()
                return
        self.in_use -= 1

    @asynccontextmanager
    async def slot(self, urgent: bool) -> AsyncIterator[None]:
        """Hold a slot for the block."""
        await self.acquire(urgent)
        try:
            yield
        finally:
            self.release()

    def statistics(self) -> dict[str, int]:
        """Slots in use, capacity, and waiters of each kind."""
        return {
            "in_use": self.in_use,
            "capacity": self.capacity,
            "waiting_urgent": len(self._waiting[0]),
            "waiting_background": len(self._waiting[1]),
        }
