"""Topics: fan-out to subscribers that never slows the publisher.

Each subscriber has a bounded buffer. When it falls behind, a message
that ``merge`` can coalesce with the last buffered one is merged into it
(e.g. two token chunks of one beat become one); past the bound, the whole
buffer is dropped for a single :class:`Lagged` marker: the subscriber must
resync from the source of truth. So memory stays bounded however slow a
subscriber is, and a fast subscriber never waits for a slow one.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import attrs
import trio

from ._statistics import SubscriptionStatistics, TopicStatistics

log = logging.getLogger("troupe.runtime")

Merge = Callable[[Any, Any], Any]
"""``merge(prev, new)`` returns the coalesced message, or None when they don't merge."""


@attrs.frozen
class Lagged:
    """The subscriber fell behind and ``dropped`` messages were discarded: resync."""

    dropped: int


class Subscription:
    """One subscriber's view of a topic: an async iterator of messages and ``Lagged``."""

    def __init__(self, topic: Topic, max_buffer: int) -> None:
        if max_buffer < 2:
            # A Lagged marker plus the message that overflowed must fit.
            raise ValueError(f"max_buffer must be at least 2, got {max_buffer}")
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
        if buffer:
            merge = self._topic.merge
            last = buffer[-1]
            if merge is not None and not isinstance(last, Lagged):
                try:
                    merged = merge(last, message)
                except Exception:
                    log.exception("topic merge failed; the messages stay apart")
                    merged = None
                if merged is not None:
                    buffer[-1] = merged
                    self.merged += 1
                    return
            if len(buffer) >= self.max_buffer:
                fresh = earlier = 0
                for item in buffer:
                    if isinstance(item, Lagged):
                        earlier += item.dropped  # an unread marker folds into the new one
                    else:
                        fresh += 1
                buffer.clear()
                buffer.append(Lagged(earlier + fresh))
                self.lagged += 1
                self.dropped += fresh
        buffer.append(message)
        if self._lot:
            self._lot.unpark_all()

    def __aiter__(self) -> AsyncIterator[Any]:
        return self

    async def __anext__(self) -> Any:
        try:
            return await self.receive()
        except trio.EndOfChannel:
            raise StopAsyncIteration from None

    async def receive(self) -> Any:
        """The next message or ``Lagged``; waits for one; ``trio.EndOfChannel`` once closed."""
        await trio.lowlevel.checkpoint_if_cancelled()
        if self._buffer:
            item = self._take()
            await trio.lowlevel.cancel_shielded_checkpoint()
            return item
        while not self._buffer:
            if self.closed:
                raise trio.EndOfChannel
            await self._lot.park()
        return self._take()

    def receive_nowait(self) -> Any:
        """The next buffered item; raises ``trio.WouldBlock`` when there is none."""
        if not self._buffer:
            if self.closed:
                raise trio.EndOfChannel
            raise trio.WouldBlock
        return self._take()

    def _take(self) -> Any:
        self.received += 1
        return self._buffer.popleft()

    def close(self) -> None:
        """Stop receiving; what is buffered can still be read, then iteration ends."""
        self.closed = True
        self._topic._subscribers.pop(self, None)
        self._lot.unpark_all()

    def statistics(self) -> SubscriptionStatistics:
        """``depth`` (buffered now), ``max_buffer``, ``received``, ``merged``,
        ``lagged`` (times it was told to resync) and ``dropped`` messages."""
        return SubscriptionStatistics(
            depth=len(self._buffer),
            max_buffer=self.max_buffer,
            received=self.received,
            merged=self.merged,
            lagged=self.lagged,
            dropped=self.dropped,
        )


class Topic:
    """Publish to every subscriber; ``merge(prev, new)`` coalesces for laggards."""

    def __init__(self, merge: Merge | None = None, max_buffer: int = 256) -> None:
        if max_buffer < 2:
            raise ValueError(f"max_buffer must be at least 2, got {max_buffer}")
        self.merge = merge
        self.max_buffer = max_buffer
        # A dict keeps subscription order and removes in O(1).
        self._subscribers: dict[Subscription, None] = {}
        self.published = 0

    def publish(self, message: Any) -> None:
        """Hand ``message`` to every subscriber; a plain call that never blocks."""
        self.published += 1
        for subscriber in self._subscribers:
            subscriber._offer(message)

    def open(self, max_buffer: int | None = None) -> Subscription:
        """Subscribe until :meth:`Subscription.close`; prefer :meth:`subscribe`."""
        subscription = Subscription(self, max_buffer or self.max_buffer)
        self._subscribers[subscription] = None
        return subscription

    @asynccontextmanager
    async def subscribe(self, max_buffer: int | None = None) -> AsyncIterator[Subscription]:
        """Receive what is published from now on, until the block ends."""
        subscription = self.open(max_buffer)
        try:
            yield subscription
        finally:
            subscription.close()

    def statistics(self) -> TopicStatistics:
        """``published``, ``subscribers`` (count), totals of ``merged`` / ``lagged`` /
        ``dropped``, and each subscriber's own figures in ``per_subscriber``."""
        each = tuple(s.statistics() for s in self._subscribers)
        return TopicStatistics(
            published=self.published,
            subscribers=len(each),
            merged=sum(s.merged for s in each),
            lagged=sum(s.lagged for s in each),
            dropped=sum(s.dropped for s in each),
            per_subscriber=each,
        )


__all__ = ["Lagged", "Subscription", "Topic"]
