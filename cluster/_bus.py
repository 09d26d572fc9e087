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
import uuid
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import attrs
import trio
from coredis import ConnectionPool
from coredis.connection import BaseConnection
from coredis.exceptions import RedisError

from ._fanout import Fanout, Gap, Subscription
from ._rpc import (
    Handler,
    Replies,
    Waiting,
    decode_request,
    encode_answer,
    encode_request,
    node_channel,
    reply_channel,
)

log = logging.getLogger("troupe.cluster.bus")

CHAT_CHANNEL = "troupe:chat:"
"""Prefix of a chat's channel; the chat id follows."""

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
    buffer: int = attrs.field(default=1024, validator=attrs.validators.ge(2))
    """Items a local subscriber may leave unread before they are traded for a Gap."""
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
    publishing: bool
    """The publishing connection is up now."""
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
    """Local subscriptions now (a serving node's request channel counts as one)."""
    requests: int
    """Requests sent to other nodes."""
    served: int
    """Requests this node answered."""
    malformed: int
    """Requests or answers that could not be read, and were ignored."""


@attrs.define(eq=False)
class _Outgoing:
    channel: bytes | None  # None: a flush marker, done when the publisher reaches it
    data: bytes
    done: trio.Event | None = None
    receivers: int | None = None


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


def _check_frame(frame: bytes) -> bytes:
    if not isinstance(frame, bytes | bytearray | memoryview):
        raise TypeError(f"a frame is bytes, got {type(frame).__name__}")
    return bytes(frame)


class Bus:
    """A node's two connections to Redis and everything riding on them; see :func:`open_bus`."""

    def __init__(
        self, url: str, node_id: str, settings: BusSettings, nursery: trio.Nursery
    ) -> None:
        self.node_id = node_id
        self.settings = settings
        self._nursery = nursery
        # Never entered as a pool: only its reading of the URL, its connection
        # class and the arguments for it are used.
        self._template: ConnectionPool[Any] = ConnectionPool.from_url(
            url,
            connect_timeout=settings.connect_timeout,
            stream_timeout=settings.command_timeout,
            client_name=f"troupe:{node_id}",
        )
        self._closed = False
        self._fanout = Fanout()
        self._listener: BaseConnection | None = None
        self._publishing = False
        self._outbox_in, self._outbox_out = trio.open_memory_channel[_Outgoing](settings.outbox)
        self._reachable = trio.Event()
        self._tried_listener = trio.Event()
        self._tried_publisher = trio.Event()
        self._replies = Replies()
        self._serving = False
        self._published = 0
        self._dropped = 0
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
        batch: deque[_Outgoing] = deque()
        try:
            await self._publish_forever(batch)
        finally:
            while batch:  # the bus is closing: what was taken is dropped, not left waiting
                self._drop(batch.popleft())

    async def _publish_forever(self, batch: deque[_Outgoing]) -> None:
        delay = self.settings.backoff_min
        failures = 0
        connection: BaseConnection | None = None
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

    async def settled(self) -> None:
        """Until Redis has answered every subscribe and unsubscribe this node sent.

        What Redis counts of this node's subscriptions (``PUBSUB NUMSUB``) is
        then what the node wants; if the connection is lost meanwhile, the
        next one subscribes afresh and this returns at once.
        """
        await self._fanout.answered()

    async def disconnected(self) -> None:
        """Until the subscribing connection is lost (at once if it is down now)."""
        if self._fanout.connected:
            await self._fanout.lost.wait()

    @asynccontextmanager
    async def _subscription(self, name: bytes) -> AsyncIterator[Subscription]:
        if self._closed:
            raise BusClosed("the bus is closed")
        subscription = Subscription(self.settings.buffer)
        # Attaching and detaching are plain calls: no cancellation can come
        # between them and the try that pairs them.
        channel = self._fanout.attach(name, subscription)
        try:
            if not channel.live and self._fanout.connected:
                channel.joining.add(subscription)
                try:
                    with trio.move_on_after(self.settings.subscribe_timeout):
                        await channel.settled.wait()
                finally:
                    channel.joining.discard(subscription)
            yield subscription
        finally:
            subscription._close()
            self._fanout.detach(name, subscription)

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
                    connection.invalidate()
                    self._listener = None
                    self._fanout.down()
            self._tried_listener.set()
            delay = await self._pause(delay)

    async def _listen(self, connection: BaseConnection) -> None:
        def send(command: bytes, *names: bytes) -> bool:
            try:
                connection.send_command(command, *names)
            except RedisError:
                return False  # the connection is going; the next one starts over
            return True

        self._listener = connection
        self._fanout.up(send)
        self._tried_listener.set()
        self._nursery.start_soon(self._keepalive, connection)
        async for message in connection.push_messages:
            self._fanout.push(message)

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
        outgoing = _Outgoing(
            node_channel(target),
            encode_request(request_id, self.node_id, _check_frame(payload)),
            trio.Event(),
        )
        waiting = self._replies.waiting[request_id] = Waiting()
        self._requests += 1
        try:
            if not self._enqueue(outgoing):
                raise NodeUnreachable(target, "Redis is unreachable")
            assert outgoing.done is not None
            with trio.move_on_after(bound):
                await outgoing.done.wait()
                if self._closed:
                    raise BusClosed("the bus closed before the request went out")
                if outgoing.receivers is None:
                    raise NodeUnreachable(target, "the request was lost with Redis")
                if outgoing.receivers == 0:
                    raise NodeUnreachable(target, "no node of that id is serving")
                await waiting.answered.wait()
                if self._closed:
                    raise BusClosed("the bus closed before the answer came")
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
        concurrently, at most ``settings.max_handlers`` at once; past that
        the node reads no more until one finishes. A handler that raises is
        logged and its requester gets :class:`RequestFailed`.
        """
        if self._serving:
            raise BusError(f"node {self.node_id!r} is already serving")
        self._serving = True
        slots = trio.Semaphore(self.settings.max_handlers)
        try:
            async with (
                self._subscription(node_channel(self.node_id)) as requests,
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
                self._enqueue(_Outgoing(reply_channel(reply_to), frame))
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

    async def _start(self) -> None:
        """Start both connections; wait (bounded) for their first attempt and the reply channel."""
        replies = self._fanout.attach(reply_channel(self.node_id), self._replies)
        self._nursery.start_soon(self._run_publisher)
        self._nursery.start_soon(self._run_listener)
        with trio.move_on_after(self.settings.connect_timeout * 2):
            await self._tried_publisher.wait()
            await self._tried_listener.wait()
        if self._fanout.connected and not replies.live:
            with trio.move_on_after(self.settings.subscribe_timeout):
                await replies.settled.wait()

    def _close(self) -> None:
        self._closed = True
        self._fanout.close()
        self._drain_outbox()
        for waiting in self._replies.waiting.values():
            waiting.answered.set()

    def statistics(self) -> BusStatistics:
        """A snapshot of the bus's figures."""
        return BusStatistics(
            connected=self._listener is not None,
            publishing=self._publishing,
            published=self._published,
            dropped=self._dropped,
            outbox=self._outbox_in.statistics().current_buffer_used,
            gaps=self._fanout.gaps,
            reconnects=self._reconnects,
            channels=len(self._fanout.channels),
            subscribers=self._fanout.subscribers(),
            requests=self._requests,
            served=self._served,
            malformed=self._malformed + self._replies.malformed,
        )


async def _run_connection(
    connection: BaseConnection, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    await connection.run(task_status=task_status)


@asynccontextmanager
async def open_bus(
    url: str, node_id: str, settings: BusSettings | None = None
) -> AsyncIterator[Bus]:
    """Connect node ``node_id`` to the Redis at ``url`` for the duration of the block.

    Entering waits at most a couple of connect timeouts: a Redis that is down
    at start is no error, the bus connects when it comes (and publishing drops
    frames until then). Leaving closes both connections and ends every
    subscription; requests still waiting fail with :class:`BusClosed`.
    """
    if not isinstance(url, str) or not url.startswith(("redis://", "rediss://", "unix://")):
        raise ValueError(f"the bus is a redis://, rediss:// or unix:// URL, got {url!r}")
    _check_node_id(node_id)
    async with trio.open_nursery() as nursery:
        bus = Bus(url, node_id, settings or BusSettings(), nursery)
        try:
            await bus._start()
            yield bus
        finally:
            bus._close()
            nursery.cancel_scope.cancel()


__all__ = [
    "CHAT_CHANNEL",
    "Bus",
    "BusClosed",
    "BusError",
    "BusSettings",
    "BusStatistics",
    "Gap",
    "NodeUnreachable",
    "RequestFailed",
    "Subscription",
    "chat_channel",
    "open_bus",
]
