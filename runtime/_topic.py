"""Topics: fan-out to subscribers that never slows the publisher.

Each subscriber has a bounded buffer. When it falls behind, mergeable
messages coalesce with the one buffered before them; past the bound, the
buffer is dropped for a single :class:`Lagged` marker: the subscriber must
resync. Memory stays bounded however slow a subscriber is.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import attrs
import trio

Merge = Callable[[Any, Any], Any]


@attrs.frozen
class Lagged:
    """The subscriber fell behind; ``dropped`` messages were discarded. Resync."""

    dropped: int


class Subscription:
    """One subscriber's view of a topic: an async iterator of messages and ``Lagged``."""

    def __init__(self, topic: Topic, max_buffer: int) -> None:
        self._topic = topic
        self.max_buffer = max_buffer
        self._buffer: deque[Any] = deque()
        self._lot = trio.lowlevel.ParkingLot()
        self.closed = False
        self.received = 0
        self.merged = 0
        self.lagged = 0
        self.dropped = 0

    def _offer(self, message: Any) -> None:
        buffer = self._buffer
        merge = self._topic.merge
        if buffer and merge is not None and not isinstance(buffer[-1], Lagged):
            merged = merge(buffer[-1], message)
            if merged is not None:
                buffer[-1] = merged
                self.merged += 1
                return
        if len(buffer) >= self.max_buffer:
            dropped = sum(1 for item in buffer if not isinstance(item, Lagged))
            buffer.clear()
            buffer.append(Lagged(dropped))
            self.lagged += 1
            self.dropped += dropped
        buffer.append(message)
        self._lot.unpark_all()

    def __aiter__(self) -> AsyncIterator[Any]:
        return self

    async def __anext__(self) -> Any:
        while not self._buffer:
            if self.closed:
                raise StopAsyncIteration
            await self._lot.park()
        self.received += 1
        return self._buffer.popleft()

    def receive_nowait(self) -> Any:
        """The next buffered item; raises ``trio.WouldBlock`` when there is none."""
        if not self._buffer:
            raise trio.WouldBlock
        self.received += 1
        return self._buffer.popleft()

    def close(self) -> None:
        """Stop receiving; a reader waiting now ends its iteration."""
        self.closed = True
        self._topic._subscribers.discard(self)
        self._lot.unpark_all()

    def statistics(self) -> dict[str, int]:
        """Buffered now, received, merged, lag episodes and dropped messages."""
        return {
            "depth": len(self._buffer),
            "max_buffer": self.max_buffer,
            "received": self.received,
            "merged": self.merged,
            "lagged": self.lagged,
            "dropped": self.dropped,
        }


class Topic:
    """Publish to every subscriber; ``merge(prev, new)`` coalesces for laggards."""

    def __init__(self, merge: Merge | None = None, max_buffer: int = 256) -> None:
        self.merge = merge
        self.max_buffer = max_buffer
        self._subscribers: set[Subscription] = set()
        self.published = 0

    def publish(self, message: Any) -> None:
        """Hand ``message`` to every subscriber; never blocks, never fails."""
        self.published += 1
        for subscriber in self._subscribers:
            subscriber._offer(message)

    @asynccontextmanager
    async def subscribe(self, max_buffer: int | None = None) -> AsyncIterator[Subscription]:
        """Receive what is published from now on, until the block ends."""
        subscription = Subscription(self, max_buffer or self.max_buffer)
        self._subscribers.add(subscription)
        try:
            yield subscription
        finally:
            subscription.close()

    def statistics(self) -> dict[str, Any]:
        """Published count and each subscriber's figures."""
        return {
            "published": self.published,
            "subscribers": [s.statistics() for s in self._subscribers],
        }
