"""One node's side of Redis pub/sub: the channels it wants, and the local subscribers of each.

No I/O here. The bus tells the table what its subscribing connection did
(came up, received a push message, was lost); the table says what to send
on it (SUBSCRIBE, UNSUBSCRIBE) through the ``send`` it was given, and hands
frames and gaps to the local sinks without ever blocking.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from typing import Literal, Protocol

import attrs
import trio


@attrs.frozen
class Gap:
    """Frames may have been missed before this point: resync from the database.

    ``reason`` is ``"resubscribed"`` (the Redis subscription was established
    again after it was lost, or first established after the subscriber
    joined) or ``"overflow"`` (the subscriber fell behind and its buffered
    frames were discarded).
    """

    reason: Literal["resubscribed", "overflow"]


class Sink(Protocol):
    """Where a channel's frames go on this node: a subscription, or the reply router."""

    def _deliver(self, item: bytes | Gap) -> bool:
        """Take a frame or a gap without blocking; True when a Gap was queued."""
        ...


class Subscription:
    """One local subscriber's frames: an async iterator of ``bytes`` and :class:`Gap`.

    Its buffer holds at most ``limit`` items. When a frame arrives with the
    buffer full, what is buffered is discarded for one Gap (the subscriber
    must resync anyway, and the database has every committed message), so a
    slow subscriber costs bounded memory and never slows the others.
    Iteration ends when the bus closes. Get one from ``Bus.subscribe``.
    """

    def __init__(self, limit: int) -> None:
        if limit < 2:
            # A Gap and the frame that overflowed must fit.
            raise ValueError(f"a subscription's buffer holds at least 2 items, got {limit}")
        self._limit = limit
        self._items: deque[bytes | Gap] = deque()
        self._lot = trio.lowlevel.ParkingLot()
        self._closed = False

    def _deliver(self, item: bytes | Gap) -> bool:
        items = self._items
        if isinstance(item, Gap):
            if items and isinstance(items[-1], Gap):
                return False  # the unread Gap already says it
            items.append(item)
            self._lot.unpark_all()
            return True
        gap = len(items) >= self._limit
        if gap:
            items.clear()
            items.append(Gap("overflow"))
        items.append(item)
        self._lot.unpark_all()
        return gap

    def _close(self) -> None:
        self._closed = True
        self._lot.unpark_all()

    @property
    def pending(self) -> int:
        """Items buffered and not yet read."""
        return len(self._items)

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> bytes | Gap:
        await trio.lowlevel.checkpoint_if_cancelled()
        while not self._items:
            if self._closed:
                raise StopAsyncIteration
            await self._lot.park()
        item = self._items.popleft()
        # Taken, so no cancellation from here on: the item is returned, never lost.
        await trio.lowlevel.cancel_shielded_checkpoint()
        return item


@attrs.define(eq=False)
class Channel:
    """One Redis channel this node wants, and the local sinks it feeds."""

    name: bytes
    sinks: set[Sink] = attrs.field(factory=set)
    joining: set[Sink] = attrs.field(factory=set)
    """Sinks still waiting in ``subscribe`` for Redis to confirm: they need no Gap."""
    live: bool = False
    """Redis confirmed the subscription on the current connection."""
    settled: trio.Event = attrs.field(factory=trio.Event)
    """Set when the channel goes live, or when the connection is lost: look again."""


Send = Callable[..., bool]
"""``send(command, *names)``: write (UN)SUBSCRIBE on the connection; False when it is gone."""


class Fanout:
    """The channels one node wants, reference counted, and their sinks."""

    def __init__(self) -> None:
        self.channels: dict[bytes, Channel] = {}
        self.gaps = 0
        """Gap markers handed to sinks so far."""
        self._send: Send | None = None
        self._inflight: dict[bytes, int] = {}  # (UN)SUBSCRIBEs sent, not yet confirmed
        self._answered = trio.Event()
        """Set, then replaced, whenever Redis answers one or the connection goes."""
        self.lost = trio.Event()
        """Set when the subscribing connection goes; a new one when the next comes up."""

    @property
    def connected(self) -> bool:
        return self._send is not None

    def attach(self, name: bytes, sink: Sink) -> Channel:
        """Add ``sink`` to ``name``'s sinks; the first one subscribes."""
        channel = self.channels.get(name)
        if channel is None:
            channel = self.channels[name] = Channel(name)
            self._command(b"SUBSCRIBE", name)
        channel.sinks.add(sink)
        return channel

    def detach(self, name: bytes, sink: Sink) -> None:
        """Remove ``sink``; the last one to leave unsubscribes."""
        channel = self.channels.get(name)
        if channel is None:
            return
        channel.sinks.discard(sink)
        if not channel.sinks:
            del self.channels[name]
            self._command(b"UNSUBSCRIBE", name)

    def _command(self, command: bytes, *names: bytes) -> None:
        if self._send is None or not names:
            return  # the next connection subscribes to what is wanted then
        if self._send(command, *names):
            for name in names:
                self._inflight[name] = self._inflight.get(name, 0) + 1

    async def answered(self) -> None:
        """Until Redis answered every (UN)SUBSCRIBE sent on the current connection."""
        while self._inflight:
            await self._answered.wait()

    def _wake(self) -> None:
        answered, self._answered = self._answered, trio.Event()
        answered.set()

    def up(self, send: Send) -> None:
        """A subscribing connection came up: subscribe to every wanted channel, in one command."""
        self._send = send
        if self.lost.is_set():
            self.lost = trio.Event()
        self._inflight.clear()
        self._command(b"SUBSCRIBE", *self.channels)

    def down(self) -> None:
        """The subscribing connection is lost: nothing is live until the next one."""
        self._send = None
        self._inflight.clear()
        self._wake()
        self.lost.set()
        for channel in self.channels.values():
            channel.live = False
            settled, channel.settled = channel.settled, trio.Event()
            settled.set()  # wake those waiting in subscribe: nobody is there to confirm

    def push(self, message: Sequence[object]) -> None:
        """Take one push message from Redis: a frame, or the answer to a (UN)SUBSCRIBE."""
        kind, name = message[0], message[1]
        if not isinstance(name, bytes):
            return
        if kind == b"message":
            channel = self.channels.get(name)
            data = message[2]
            if channel is not None and isinstance(data, bytes):
                for sink in tuple(channel.sinks):
                    if sink._deliver(data):
                        self.gaps += 1
        elif kind in (b"subscribe", b"unsubscribe"):
            # Redis answers (UN)SUBSCRIBEs in the order sent: once the last one
            # sent for a name is answered and it was a SUBSCRIBE, the name is live.
            left = self._inflight.get(name, 0) - 1
            if left > 0:
                self._inflight[name] = left
                return
            self._inflight.pop(name, None)
            self._wake()
            channel = self.channels.get(name)
            if kind == b"subscribe" and channel is not None and not channel.live:
                self._went_live(channel)

    def _went_live(self, channel: Channel) -> None:
        channel.live = True
        channel.settled.set()
        for sink in tuple(channel.sinks):
            if sink not in channel.joining and sink._deliver(Gap("resubscribed")):
                self.gaps += 1

    def close(self) -> None:
        """End every subscription's iteration."""
        for channel in self.channels.values():
            for sink in channel.sinks:
                if isinstance(sink, Subscription):
                    sink._close()

    def subscribers(self) -> int:
        """Local subscriptions now."""
        return sum(
            isinstance(sink, Subscription)
            for channel in self.channels.values()
            for sink in channel.sinks
        )


__all__ = ["Channel", "Fanout", "Gap", "Sink", "Subscription"]
