"""The bus between nodes: Redis pub/sub carrying frames per chat, and node-to-node requests.

Each node holds two connections to Redis: one that publishes and one that
subscribes. A chat's frames go out on the channel ``troupe:chat:{chat_id}``;
every node with local watchers of that chat holds one Redis subscription to
it, however many watchers it has, and fans each frame out to them.

What the bus guarantees, and what it does not:

- Redis pub/sub is at most once. A frame published while Redis is down, or
  while a subscriber's connection is being re-established, is lost; nothing
  is retried and nothing is persisted.
- Order holds per channel per publishing connection: the frames one node
  publishes on one chat arrive at every subscriber in the order published
  (those that arrive at all).
- The bus adds one thing: the :class:`Gap` marker. A subscriber receives a
  Gap whenever it may have missed frames: after its Redis subscription was
  re-established (Redis restarted, the connection dropped), or when it fell
  so far behind that its buffer overflowed. The Gap comes after the
  subscription is live again, so a consumer that resyncs on a Gap misses
  nothing that follows it.
- Correctness comes from elsewhere: frames carry sequence numbers that the
  consumer checks, and on a Gap or a jump in the numbers the consumer
  resyncs from PostgreSQL, which holds every committed message.

Publishing never blocks the caller and never raises for want of Redis: the
frame goes into a bounded outbox that the publishing connection empties in
batches (one round trip per batch). While Redis is unreachable, or when the
outbox is full, the frame is dropped and counted.

Requests between nodes (routing a command to a chat's owner) ride the same
pub/sub: a request goes to ``troupe:node:{node_id}`` with an id and the
sender's node id, the answer comes back on ``troupe:reply:{sender}``. Redis
reports how many subscribers a publish reached, so a request to a node that
is not serving fails at once; a lost request or answer times out. Either way
the caller gets :class:`NodeUnreachable` and may retry: commands that write
carry ids and are idempotent.

Both connections come back by themselves after Redis goes away, with a
bounded, growing pause between attempts (never a hot loop); each one coming
back wakes the other. The bus builds its connections itself from coredis'
connection class rather than from a coredis connection pool: the pool does
not give back the slot of a connection that dies while leased, so a few
Redis restarts would exhaust it.
"""

from __future__ import annotations

import logging
import random
import struct
import uuid
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, Literal, Protocol

import attrs
import trio
from coredis import ConnectionPool
from coredis.connection import BaseConnection
from coredis.exceptions import RedisError

log = logging.getLogger("troupe.cluster.bus")

CHAT_CHANNEL = "troupe:chat:"
"""Prefix of a chat's channel; the chat id follows."""
NODE_CHANNEL = "troupe:node:"
"""Prefix of the channel a node receives requests on; the node id follows."""
REPLY_CHANNEL = "troupe:reply:"
"""Prefix of the channel a node receives answers to its requests on."""

# What a lost or unreachable Redis raises on the way through coredis and trio.
_DOWN = (RedisError, TimeoutError, OSError, trio.TooSlowError)


class BusError(Exception):
    """Base of the bus's own errors."""


class BusClosed(BusError):
    """The bus was used after its block ended."""


class NodeUnreachable(BusError):
    """A request got no answer: the node is not serving, or Redis or the node lost it."""

    def __init__(self, node_id: str, reason: str) -> None:
        super().__init__(f"node {node_id!r} unreachable: {reason}")
        self.node_id = node_id
        self.reason = reason


class RequestFailed(BusError):
    """The node answered, but its handler raised; the text says what it raised."""


@attrs.frozen
class Gap:
    """Frames may have been missed before this point: resync from the database.

    ``reason`` is ``"resubscribed"`` (the Redis subscription was established
    again after it was lost, or first established after the subscriber
    joined) or ``"overflow"`` (the subscriber fell behind and its buffered
    frames were discarded).
    """

    reason: Literal["resubscribed", "overflow"]


@attrs.frozen
class BusSettings:
    """The bus's bounds. The defaults suit a node on the same network as Redis."""

    connect_timeout: float = attrs.field(default=1.0, validator=attrs.validators.gt(0))
    """Seconds to connect and shake hands with Redis before the attempt counts as failed."""
    command_timeout: float = attrs.field(default=1.0, validator=attrs.validators.gt(0))
    """Seconds Redis may take to answer a batch of publishes or a PING."""
    keepalive: float = attrs.field(default=5.0, validator=attrs.validators.gt(0))
    """Seconds between PINGs on the subscribing connection, to notice a Redis that hangs."""
    backoff_min: float = attrs.field(default=0.05, validator=attrs.validators.gt(0))
    """First pause before connecting again; it doubles on each failure ..."""
    backoff_max: float = attrs.field(default=2.0, validator=attrs.validators.gt(0))
    """... up to this."""
    outbox: int = attrs.field(default=4096, validator=attrs.validators.gt(0))
    """Frames waiting for the publishing connection; past it, frames are dropped."""
    batch: int = attrs.field(default=256, validator=attrs.validators.gt(0))
    """Publishes sent in one round trip at most."""
    buffer: int = attrs.field(default=1024, validator=attrs.validators.gt(0))
    """Frames a local subscriber may leave unread before they are traded for a Gap."""
    subscribe_timeout: float = attrs.field(default=1.0, validator=attrs.validators.gt(0))
    """Seconds ``subscribe`` waits for Redis to confirm a new subscription."""
    request_timeout: float = attrs.field(default=5.0, validator=attrs.validators.gt(0))
    """Default bound on ``request``."""
    max_handlers: int = attrs.field(default=64, validator=attrs.validators.gt(0))
    """Requests a serving node answers at once; more wait their turn."""


@attrs.frozen
class BusStatistics:
    """The bus's figures, from :meth:`Bus.statistics`."""

    connected: bool
    """The subscribing connection is up now."""
    published: int
    """Frames Redis took (requests and answers included)."""
    dropped: int
    """Frames given up: Redis unreachable, the connection lost under them, the outbox full."""
    outbox: int
    """Frames waiting for the publishing connection now."""
    gaps: int
    """Gap markers handed to local subscribers."""
    reconnects: int
    """Times the subscribing connection came back after it was lost."""
    channels: int
    """Redis channels this node wants to be subscribed to now (one per watched chat)."""
    subscribers: int
    """Local subscriptions now."""
    requests: int
    """Requests sent to other nodes."""
    served: int
    """Requests this node answered."""
    malformed: int
    """Requests or answers that could not be read, and were ignored."""


# --- the wire form of requests and answers: pure functions of bytes ----------------

_ID = 16  # a request id: the bytes of a uuid4
_REQUEST = b"Q"
_ANSWER = b"A"
_FAILURE = b"F"


def encode_request(request_id: bytes, reply_to: str, payload: bytes) -> bytes:
    """``Q``, the id, the sender's node id (length-prefixed), then the payload."""
    sender = reply_to.encode()
    return b"".join((_REQUEST, request_id, struct.pack(">H", len(sender)), sender, payload))


def decode_request(frame: bytes) -> tuple[bytes, str, bytes]:
    """``(request_id, reply_to, payload)``; ValueError when the frame is not a request."""
    head = 1 + _ID + 2
    if len(frame) < head or frame[:1] != _REQUEST:
        raise ValueError("not a request frame")
    (size,) = struct.unpack(">H", frame[1 + _ID : head])
    if len(frame) < head + size:
        raise ValueError("request frame cut short")
    return frame[1 : 1 + _ID], frame[head : head + size].decode(), frame[head + size :]


def encode_answer(request_id: bytes, ok: bool, payload: bytes) -> bytes:
    """``A`` (the handler's result) or ``F`` (what it raised), the id, then the payload."""
    return (_ANSWER if ok else _FAILURE) + request_id + payload


def decode_answer(frame: bytes) -> tuple[bytes, bool, bytes]:
    """``(request_id, ok, payload)``; ValueError when the frame is not an answer."""
    if len(frame) < 1 + _ID or frame[:1] not in (_ANSWER, _FAILURE):
        raise ValueError("not an answer frame")
    return frame[1 : 1 + _ID], frame[:1] == _ANSWER, frame[1 + _ID :]


# --- local fan-out ---------------------------------------------------------------------


class _Sink(Protocol):
    def _deliver(self, item: bytes | Gap) -> bool:
        """Take a frame or a gap without blocking; True when a Gap was queued."""
        ...


class Subscription:
    """One local subscriber's frames: an async iterator of ``bytes`` and :class:`Gap`.

    Its buffer holds at most ``limit`` frames. When a frame arrives with the
    buffer full, the buffered frames are discarded for one Gap (the
    subscriber must resync anyway, and the database has them all), so a slow
    subscriber costs bounded memory and never slows the others. Iteration
    ends when the bus closes. Get one from :meth:`Bus.subscribe`.
    """

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._items: deque[bytes | Gap] = deque()
        self._lot = trio.lowlevel.ParkingLot()
        self._closed = False

    def _deliver(self, item: bytes | Gap) -> bool:
        items = self._items
        if isinstance(item, Gap):
            if items and isinstance(items[-1], Gap):
                return False  # one unread Gap already says it
            items.append(item)
            self._lot.unpark_all()
            return True
        gap = False
        if len(items) >= self._limit:
            items.clear()
            items.append(Gap("overflow"))
            gap = True
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
        await trio.lowlevel.cancel_shielded_checkpoint()
        return item


@attrs.define(eq=False)
class _Channel:
    """One Redis channel this node wants, and the local sinks it feeds."""

    name: bytes
    sinks: set[_Sink] = attrs.field(factory=set)
    joining: set[_Sink] = attrs.field(factory=set)
    """Sinks inside ``subscribe`` waiting for Redis to confirm: they need no Gap."""
    live: bool = False
    """Redis confirmed the subscription on the current connection."""
    settled: trio.Event = attrs.field(factory=trio.Event)
    """Set when the channel goes live, or when the connection is lost: look again."""


@attrs.define(eq=False)
class _Outgoing:
    channel: bytes | None  # None: a flush marker, resolved when the publisher reaches it
    data: bytes
    done: trio.Event | None = None
    receivers: int | None = None


@attrs.define(eq=False)
class _Waiting:
    """A request waiting for its answer."""

    answered: trio.Event = attrs.field(factory=trio.Event)
    ok: bool = False
    payload: bytes = b""

    def _deliver(self, item: bytes | Gap) -> bool:
        return False


class _Replies:
    """The sink of this node's reply channel: hands each answer to its waiting request."""

    def __init__(self, bus: Bus) -> None:
        self._bus = bus
        self.waiting: dict[bytes, _Waiting] = {}

    def _deliver(self, item: bytes | Gap) -> bool:
        if isinstance(item, Gap):
            return False  # a lost answer is the request's timeout to notice
        try:
            request_id, ok, payload = decode_answer(item)
        except ValueError:
            self._bus._malformed += 1
            return False
        waiting = self.waiting.get(request_id)
        if waiting is not None and not waiting.answered.is_set():
            waiting.ok, waiting.payload = ok, payload
            waiting.answered.set()
        return False


Handler = Callable[[bytes], Awaitable[bytes]]
"""What :meth:`Bus.serve` calls for each request addressed to this node."""


def chat_channel(chat_id: str) -> bytes:
    """The Redis channel a chat's frames travel on."""
    if not isinstance(chat_id, str) or not chat_id:
        raise ValueError(f"a chat id is a non-empty string, got {chat_id!r}")
    return (CHAT_CHANNEL + chat_id).encode()


def _check_node_id(node_id: str) -> str:
    if not isinstance(node_id, str) or not node_id or len(node_id) > 200:
        raise ValueError(f"a node id is a string of 1 to 200 characters, got {node_id!r}")
    if any(c.isspace() for c in node_id):
        raise ValueError(f"a node id has no spaces, got {node_id!r}")
    return node_id


class Bus:
    """A node's two connections to Redis and everything riding on them; see :func:`open_bus`."""

    def __init__(
        self, url: str, node_id: str, settings: BusSettings, nursery: trio.Nursery
    ) -> None:
        self.node_id = node_id
        self.settings = settings
        self._nursery = nursery
        # Not entered as a pool: only its parsing of the URL and its connection
        # class and arguments are used.
        self._template: ConnectionPool[Any] = ConnectionPool.from_url(
            url,
            connect_timeout=settings.connect_timeout,
            stream_timeout=settings.command_timeout,
            client_name=f"troupe:{node_id}",
        )
        self._closed = False
        self._channels: dict[bytes, _Channel] = {}
        self._inflight: dict[bytes, int] = {}  # SUBSCRIBE/UNSUBSCRIBE sent and not yet confirmed
        self._listener: BaseConnection | None = None
        self._publishing = False
        self._outbox_in, self._outbox_out = trio.open_memory_channel[_Outgoing](settings.outbox)
        self._reachable = trio.Event()
        self._tried_listener = trio.Event()
        self._tried_publisher = trio.Event()
        self._replies = _Replies(self)
        self._serving = False
        self._published = 0
        self._dropped = 0
        self._gaps = 0
        self._reconnects = 0
        self._requests = 0
        self._served = 0
        self._malformed = 0

    # --- publishing ----------------------------------------------------------------

    def publish_nowait(self, chat_id: str, frame: bytes) -> bool:
        """Hand ``frame`` to the publishing connection; False when it was dropped.

        Never blocks and never raises for want of Redis: while Redis is
        unreachable, or when the outbox is full, the frame is dropped and
        counted, and subscribers will see the hole in the sequence numbers.
        """
        return self._enqueue(_Outgoing(chat_channel(chat_id), _check_frame(frame)))

    async def publish(self, chat_id: str, frame: bytes) -> bool:
        """:meth:`publish_nowait`, as a checkpoint for async code."""
        queued = self.publish_nowait(chat_id, frame)
        await trio.lowlevel.checkpoint()
        return queued

    async def flush(self) -> None:
        """Wait until every frame handed over so far is published or dropped."""
        marker = _Outgoing(None, b"", trio.Event())
        if self._enqueue(marker):
            assert marker.done is not None
            await marker.done.wait()
        else:
            await trio.lowlevel.checkpoint()

    def _enqueue(self, item: _Outgoing) -> bool:
        if self._closed:
            raise BusClosed("the bus is closed")
        if self._publishing:
            try:
                self._outbox_in.send_nowait(item)
                return True
            except trio.WouldBlock:
                pass
        self._drop(item)
        return False

    def _drop(self, item: _Outgoing) -> None:
        if item.channel is not None:
            self._dropped += 1
        if item.done is not None:
            item.done.set()

    async def _run_publisher(self) -> None:
        delay = self.settings.backoff_min
        failures = 0
        connection: BaseConnection | None = None
        batch: deque[_Outgoing] = deque()
        while True:
            try:
                if connection is None or not connection.usable:
                    if connection is not None:
                        connection.invalidate()
                    connection = None
                    connection = await self._connect()
                    log.info("bus %s: publishing to Redis", self.node_id)
                    failures, delay = 0, self.settings.backoff_min
                    self._reachable.set()
                    self._publishing = True
                self._tried_publisher.set()
                if not batch:
                    await self._next_batch(batch)
                    if not connection.usable:
                        continue  # lost while idle: Redis may be back, connect before sending
                await self._send(connection, batch)
            except _DOWN as error:
                self._note_failure("publishing", failures, error)
                failures += 1
                self._publishing = False
                while batch:
                    self._drop(batch.popleft())
                self._drain_outbox()
                if connection is not None:
                    connection.invalidate()
                    connection = None
                self._tried_publisher.set()
                delay = await self._pause(delay)

    async def _next_batch(self, batch: deque[_Outgoing]) -> None:
        batch.append(await self._outbox_out.receive())
        while len(batch) < self.settings.batch:
            try:
                batch.append(self._outbox_out.receive_nowait())
            except trio.WouldBlock:
                return

    async def _send(self, connection: BaseConnection, batch: deque[_Outgoing]) -> None:
        # Every PUBLISH of the batch is written before the first answer is
        # awaited: one round trip, and Redis keeps their order.
        sent = [
            connection.create_request(b"PUBLISH", item.channel, item.data)
            if item.channel is not None
            else None
            for item in batch
        ]
        for request in sent:
            receivers = await request if request is not None else None
            item = batch.popleft()
            if item.channel is not None:
                assert isinstance(receivers, int)
                item.receivers = receivers
                self._published += 1
            if item.done is not None:
                item.done.set()

    def _drain_outbox(self) -> None:
        while True:
            try:
                self._drop(self._outbox_out.receive_nowait())
            except trio.WouldBlock:
                return

    # --- subscribing ---------------------------------------------------------------

    @asynccontextmanager
    async def subscribe(self, chat_id: str) -> AsyncIterator[Subscription]:
        """Receive the chat's frames, and Gaps, for the duration of the block.

        All local subscribers of one chat share one Redis subscription, taken
        by the first and dropped when the last leaves. On entry the bus waits
        (within ``subscribe_timeout``) for Redis to confirm a new
        subscription, so frames published after entry arrive; if Redis is
        unreachable it does not wait, and the subscriber gets a Gap once the
        subscription is live. Leaving the block, or being cancelled anywhere
        in it, gives the subscription back.
        """
        async with self._subscription(chat_channel(chat_id)) as frames:
            yield frames

    @asynccontextmanager
    async def _subscription(self, name: bytes) -> AsyncIterator[Subscription]:
        if self._closed:
            raise BusClosed("the bus is closed")
        subscription = Subscription(self.settings.buffer)
        channel = self._attach(name, subscription)
        try:
            if not channel.live and self._listener is not None:
                channel.joining.add(subscription)
                try:
                    with trio.move_on_after(self.settings.subscribe_timeout):
                        await channel.settled.wait()
                finally:
                    channel.joining.discard(subscription)
            yield subscription
        finally:
            subscription._close()
            self._detach(name, subscription)

    def _attach(self, name: bytes, sink: _Sink) -> _Channel:
        channel = self._channels.get(name)
        if channel is None:
            channel = self._channels[name] = _Channel(name)
            self._command(b"SUBSCRIBE", name)
        channel.sinks.add(sink)
        return channel

    def _detach(self, name: bytes, sink: _Sink) -> None:
        channel = self._channels.get(name)
        if channel is None:
            return
        channel.sinks.discard(sink)
        if not channel.sinks:
            del self._channels[name]
            self._command(b"UNSUBSCRIBE", name)

    def _command(self, command: bytes, *names: bytes) -> None:
        """Send (UN)SUBSCRIBE on the subscribing connection, if it is up; never waits."""
        connection = self._listener
        if connection is None or not names:
            return  # the next connection subscribes to what is wanted then
        try:
            connection.send_command(command, *names)
        except RedisError:
            return  # the connection is going; the listener will start over
        for name in names:
            self._inflight[name] = self._inflight.get(name, 0) + 1

    async def _run_listener(self) -> None:
        delay = self.settings.backoff_min
        failures = 0
        connected_before = False
        while True:
            try:
                connection = await self._connect()
            except _DOWN as error:
                self._note_failure("subscribing", failures, error)
                failures += 1
            else:
                log.info("bus %s: subscribed to Redis", self.node_id)
                if connected_before:
                    self._reconnects += 1
                connected_before = True
                failures, delay = 0, self.settings.backoff_min
                self._reachable.set()
                try:
                    await self._listen(connection)
                except _DOWN as error:
                    self._note_failure("subscribing", failures, error)
                    failures += 1
                finally:
                    self._lost(connection)
            self._tried_listener.set()
            delay = await self._pause(delay)

    async def _listen(self, connection: BaseConnection) -> None:
        self._listener = connection
        self._inflight.clear()
        self._command(b"SUBSCRIBE", *self._channels)
        self._tried_listener.set()
        self._nursery.start_soon(self._keepalive, connection)
        async for message in connection.push_messages:
            self._on_push(message)

    def _on_push(self, message: Sequence[object]) -> None:
        kind, name = message[0], message[1]
        if not isinstance(name, bytes):
            return
        if kind == b"message":
            channel = self._channels.get(name)
            data = message[2]
            if channel is not None and isinstance(data, bytes):
                for sink in tuple(channel.sinks):
                    if sink._deliver(data):
                        self._gaps += 1
        elif kind in (b"subscribe", b"unsubscribe"):
            # Redis answers (UN)SUBSCRIBEs in the order sent: once the last one
            # sent for a name is answered and it was a SUBSCRIBE, the name is live.
            left = self._inflight.get(name, 0) - 1
            if left > 0:
                self._inflight[name] = left
                return
            self._inflight.pop(name, None)
            channel = self._channels.get(name)
            if kind == b"subscribe" and channel is not None and not channel.live:
                self._went_live(channel)

    def _went_live(self, channel: _Channel) -> None:
        channel.live = True
        channel.settled.set()
        for sink in tuple(channel.sinks):
            if sink not in channel.joining and sink._deliver(Gap("resubscribed")):
                self._gaps += 1

    def _lost(self, connection: BaseConnection) -> None:
        connection.invalidate()
        self._listener = None
        self._inflight.clear()
        for channel in self._channels.values():
            channel.live = False
            settled, channel.settled = channel.settled, trio.Event()
            settled.set()  # wake those waiting in subscribe: Redis is not there to confirm

    async def _keepalive(self, connection: BaseConnection) -> None:
        """PING now and then: a Redis that hangs (rather than closes) is noticed too."""
        while self._listener is connection:
            await trio.sleep(self.settings.keepalive)
            if self._listener is not connection:
                return
            try:
                await connection.create_request(b"PING")
            except _DOWN:
                connection.invalidate("no answer to PING")  # ends the listener's loop
                return

    # --- requests between nodes ------------------------------------------------------

    async def request(self, node_id: str, payload: bytes, timeout: float | None = None) -> bytes:
        """Ask node ``node_id`` and return its handler's answer.

        Raises :class:`NodeUnreachable` at once when no node of that id is
        serving (or Redis is unreachable), and after ``timeout`` seconds
        (``settings.request_timeout`` by default) when no answer came;
        :class:`RequestFailed` when the node's handler raised. A request may
        be lost on the way; retry only what is safe to do twice.
        """
        target = _check_node_id(node_id)
        bound = self.settings.request_timeout if timeout is None else timeout
        if not bound > 0:
            raise ValueError(f"timeout must be positive, got {timeout!r}")
        request_id = uuid.uuid4().bytes
        waiting = _Waiting()
        self._replies.waiting[request_id] = waiting
        self._requests += 1
        try:
            outgoing = _Outgoing(
                (NODE_CHANNEL + target).encode(),
                encode_request(request_id, self.node_id, _check_frame(payload)),
                trio.Event(),
            )
            if not self._enqueue(outgoing):
                raise NodeUnreachable(target, "Redis is unreachable")
            assert outgoing.done is not None
            with trio.move_on_after(bound):
                await outgoing.done.wait()
                if outgoing.receivers is None:
                    raise NodeUnreachable(target, "the request was lost with Redis")
                if outgoing.receivers == 0:
                    raise NodeUnreachable(target, "no node of that id is serving")
                await waiting.answered.wait()
                if not waiting.ok:
                    raise RequestFailed(waiting.payload.decode(errors="replace"))
                return waiting.payload
            raise NodeUnreachable(target, f"no answer within {bound:g} s")
        finally:
            del self._replies.waiting[request_id]

    async def serve(
        self, handler: Handler, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Answer requests addressed to this node with ``await handler(payload)``, until cancelled.

        Start it with ``await nursery.start(bus.serve, handler)``: once
        started, requests to this node reach it. Requests are answered
        concurrently, at most ``settings.max_handlers`` at once. A handler
        that raises is logged and its requester gets :class:`RequestFailed`.
        """
        if self._serving:
            raise BusError(f"node {self.node_id!r} is already serving")
        self._serving = True
        slots = trio.Semaphore(self.settings.max_handlers)
        try:
            async with (
                self._subscription((NODE_CHANNEL + self.node_id).encode()) as requests,
                trio.open_nursery() as handlers,
            ):
                task_status.started()
                async for item in requests:
                    if isinstance(item, Gap):
                        continue  # lost requests time out at their senders
                    try:
                        request_id, reply_to, payload = decode_request(item)
                        _check_node_id(reply_to)
                    except ValueError:
                        self._malformed += 1
                        continue
                    await slots.acquire()
                    answer = self._answer
                    handlers.start_soon(answer, handler, request_id, reply_to, payload, slots)
        finally:
            self._serving = False

    async def _answer(
        self,
        handler: Handler,
        request_id: bytes,
        reply_to: str,
        payload: bytes,
        slots: trio.Semaphore,
    ) -> None:
        try:
            try:
                answer = await handler(payload)
                frame = encode_answer(request_id, True, _check_frame(answer))
            except Exception as error:
                log.exception("bus %s: a request's handler raised", self.node_id)
                failure = f"{type(error).__name__}: {error}"
                frame = encode_answer(request_id, False, failure.encode())
            if not self._closed:
                self._enqueue(_Outgoing((REPLY_CHANNEL + reply_to).encode(), frame))
                self._served += 1
        finally:
            slots.release()

    # --- connections -----------------------------------------------------------------

    async def _connect(self) -> BaseConnection:
        template = self._template
        assert template.location is not None  # from_url always finds one
        connection: BaseConnection = template.connection_class(
            template.location, **template.connection_kwargs
        )
        # The bound covers the handshake (HELLO) as well as the TCP connect.
        with trio.fail_after(self.settings.connect_timeout):
            await self._nursery.start(_run_connection, connection)
        return connection

    async def _pause(self, delay: float) -> float:
        """Wait ``delay`` (with jitter) or until the other connection reached Redis."""
        if self._reachable.is_set():
            self._reachable = trio.Event()
        with trio.move_on_after(delay * random.uniform(0.5, 1.0)):
            await self._reachable.wait()
        return min(delay * 2, self.settings.backoff_max)

    def _note_failure(self, which: str, failures: int, error: BaseException) -> None:
        # One warning per outage; the attempts after it are for debugging only.
        level = logging.WARNING if failures == 0 else logging.DEBUG
        log.log(level, "bus %s: %s connection to Redis: %r", self.node_id, which, error)

    async def _ready(self) -> None:
        """Wait, within the connect bound, for both connections' first attempt."""
        with trio.move_on_after(self.settings.connect_timeout * 2):
            await self._tried_publisher.wait()
            await self._tried_listener.wait()
        with trio.move_on_after(self.settings.subscribe_timeout):
            channel = self._channels[(REPLY_CHANNEL + self.node_id).encode()]
            if self._listener is not None and not channel.live:
                await channel.settled.wait()

    def _close(self) -> None:
        self._closed = True
        for channel in self._channels.values():
            for sink in channel.sinks:
                if isinstance(sink, Subscription):
                    sink._close()

    def statistics(self) -> BusStatistics:
        """A snapshot of the bus's figures."""
        return BusStatistics(
            connected=self._listener is not None,
            published=self._published,
            dropped=self._dropped,
            outbox=self._outbox_in.statistics().current_buffer_used,
            gaps=self._gaps,
            reconnects=self._reconnects,
            channels=len(self._channels),
            subscribers=sum(
                isinstance(sink, Subscription)
                for channel in self._channels.values()
                for sink in channel.sinks
            ),
            requests=self._requests,
            served=self._served,
            malformed=self._malformed,
        )


async def _run_connection(
    connection: BaseConnection, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    await connection.run(task_status=task_status)


def _check_frame(frame: bytes) -> bytes:
    if not isinstance(frame, bytes | bytearray | memoryview):
        raise TypeError(f"a frame is bytes, got {type(frame).__name__}")
    return bytes(frame)


@asynccontextmanager
async def open_bus(
    url: str, node_id: str, settings: BusSettings | None = None
) -> AsyncIterator[Bus]:
    """Connect node ``node_id`` to the Redis at ``url`` for the duration of the block.

    Entering waits at most a couple of connect timeouts: a Redis that is down
    at start is no error, the bus connects when it comes (and publishing drops
    frames until then). Leaving closes both connections and ends every
    subscription.
    """
    if not isinstance(url, str) or not url.startswith(("redis://", "rediss://", "unix://")):
        raise ValueError(f"the bus is a redis://, rediss:// or unix:// URL, got {url!r}")
    _check_node_id(node_id)
    async with trio.open_nursery() as nursery:
        bus = Bus(url, node_id, settings or BusSettings(), nursery)
        bus._attach((REPLY_CHANNEL + node_id).encode(), bus._replies)
        nursery.start_soon(bus._run_publisher)
        nursery.start_soon(bus._run_listener)
        try:
            await bus._ready()
            yield bus
        finally:
            bus._close()
            nursery.cancel_scope.cancel()


__all__ = [
    "Bus",
    "BusClosed",
    "BusError",
    "BusSettings",
    "BusStatistics",
    "Gap",
    "Handler",
    "NodeUnreachable",
    "RequestFailed",
    "Subscription",
    "chat_channel",
    "open_bus",
]
