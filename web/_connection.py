"""One WebSocket connection: read, limit, decode, dispatch, answer, and watch chats.

Three kinds of task serve a connection: the reader (one frame at a time, in
order), one watch per open chat (forwarding what ``engine.watch`` yields),
and the sender, draining the connection's :class:`~web._outbox.Outbox`. A
watch whose token finds the outbox idle sends it itself, the sender of that
one frame (so a streaming token costs no trip to the sender task); every
other frame waits in the outbox for the sender. A client that goes away
stops the sender and the watches; a command it already sent still runs to
its end, so a disconnect never cancels a turn.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import AsyncIterator, Callable

import trio
from trio_websocket import ConnectionClosed, WebSocketConnection

import protocol as p
from actors import Engine

from ._bucket import TokenBucket
from ._commands import COMMANDS, Answer, run_command
from ._outbox import Frame, Outbox
from ._route import Router, chat_of
from ._settings import GatewaySettings
from ._statistics import ConnectionStatistics, GatewayStatistics
from ._wire import Encoded, encode, token_frame

log = logging.getLogger("troupe.web")

_numbers = itertools.count(1)

_MAX_SLOW = 8
"""Slow commands of one connection at once; past it the reader waits for one to end."""


class Connection:
    """Serves one client until it goes away or the gateway closes it."""

    def __init__(
        self,
        ws: WebSocketConnection,
        engine: Engine,
        settings: GatewaySettings,
        statistics: Callable[[], GatewayStatistics],
        router: Router | None = None,
    ) -> None:
        self.number = next(_numbers)
        self.router = router
        """Where commands about a chat run, in a cluster; None on one machine."""
        self.ws = ws
        self.engine = engine
        self.settings = settings
        self.gateway_statistics = statistics
        """The whole gateway's figures, for the ``statistics`` command."""
        self.outbox = Outbox(settings.send_queue)
        self.bucket = TokenBucket(settings.rate, settings.burst)
        self.watches: dict[str, trio.CancelScope] = {}
        self.seats: dict[str, str] = {}
        """The persona this connection sits as, by chat; ``you`` where it took no seat."""
        self.received = 0
        self.sent = 0
        self.scope = trio.CancelScope()
        self._nursery: trio.Nursery | None = None
        self._commands: trio.Nursery | None = None
        self._slow = trio.Semaphore(_MAX_SLOW)
        self._direct: trio.CancelScope | None = None
        """The watch sending a frame itself right now (one at most: see ``Outbox.claim``)."""
        self._stop_after_send = False

    def __repr__(self) -> str:
        return f"<connection {self.number}>"

    def statistics(self) -> ConnectionStatistics:
        """What this connection watches, its send queue, and its traffic so far."""
        return ConnectionStatistics(
            connection=self.number,
            watching=tuple(sorted(self.watches)),
            queue_depth=len(self.outbox),
            queue=self.outbox.statistics(),
            received=self.received,
            sent=self.sent,
            rate_limited=self.bucket.refused,
        )

    def seat(self, chat_id: str) -> str:
        """The persona whose turns this connection sends in the chat."""
        return self.seats.get(chat_id, p.YOU_ID)

    # --- the tasks ---

    async def serve(self) -> None:
        """Read and answer frames until the client closes or :meth:`close` ends it."""
        with self.scope:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                nursery.start_soon(self._send_loop)
                try:
                    # A client that goes away still has its slow commands run to
                    # their end: leaving this nursery waits for them.
                    async with trio.open_nursery() as commands:
                        self._commands = commands
                        await self._read_loop()
                finally:
                    self.outbox.close()
                    nursery.cancel_scope.cancel()

    async def _read_loop(self) -> None:
        while True:
            try:
                frame = await self.ws.get_message()
            except ConnectionClosed:
                return
            self.received += 1
            if not await self.handle_frame(frame):
                return

    async def _send_loop(self) -> None:
        outbox = self.outbox
        while True:
            try:
                frame = await outbox.get()
            except trio.EndOfChannel:
                return
            try:
                await self.ws.send_message(encode(frame))
            except ConnectionClosed:
                self._peer_gone()
                return
            finally:
                outbox.sent()
            self.sent += 1

    def _peer_gone(self) -> None:
        # The peer is gone: stop queueing for it. The reader finds out on its
        # own, after it has finished the command it is running.
        self.outbox.close()
        for scope in list(self.watches.values()):
            self._stop_watch(scope)

    def _stop_watch(self, scope: trio.CancelScope) -> None:
        """Cancel a watch; one sending a frame itself stops once that frame is out.

        Half a frame on the wire would break the stream for good, so the cancel
        waits for the send (the connection's own end still cuts it short).
        """
        if scope is self._direct:
            self._stop_after_send = True
        else:
            scope.cancel()

    async def _send_now(self, frame: Encoded, watch: trio.CancelScope) -> None:
        """Send a frame from the watch ``watch``, which ``Outbox.claim`` made its sender."""
        self._direct = watch
        try:
            await self.ws.send_message(frame.text)
            self.sent += 1
        except ConnectionClosed:
            self._direct = None
            self._peer_gone()
        finally:
            self._direct = None
            self.outbox.sent()
            if self._stop_after_send:
                self._stop_after_send = False
                watch.cancel()

    async def close(self, code: int, reason: str, timeout: float) -> None:
        """Send what is queued, then close with ``code``; past ``timeout``, drop the socket."""
        with trio.move_on_after(timeout) as bounded:
            for scope in list(self.watches.values()):
                self._stop_watch(scope)
            await self.outbox.drained()
            await self.ws.aclose(code, reason)
        if bounded.cancelled_caught:
            log.info("%r did not close in time; dropping it", self)
        self.scope.cancel()

    # --- one frame ---

    async def put(self, message: p.ServerMessage, reply_to: str | None, direct: bool) -> None:
        """Queue a protocol message for the sender."""
        await self.outbox.put(p.to_wire(message, reply_to, direct=direct))

    async def error(self, code: p.ErrorCode, message: str, reply_to: str | None = None) -> None:
        """Queue an error answer."""
        await self.put(p.Error(code, message), reply_to, True)

    async def handle_frame(self, frame: str | bytes) -> bool:
        """Answer one frame; False when the connection must close."""
        if isinstance(frame, bytes):
            await self.error("bad_message", "binary frames are not part of the protocol")
            return True
        size = len(frame.encode("utf-8", "surrogatepass"))
        if size > self.settings.max_frame:
            await self.error(
                "too_large",
                f"the frame is {size} bytes; at most {self.settings.max_frame} are allowed",
                p.peek_id(frame),
            )
            await self.close(1009, "frame too large", self.settings.close_timeout)
            return False
        if not self.bucket.take():
            await self.error(
                "rate_limited",
                f"too many messages: at most {self.settings.rate:g} a second"
                f" (bursts of {self.settings.burst}); this one was not run",
                p.peek_id(frame),
            )
            return True
        try:
            envelope = p.decode_client(frame)
        except p.ProtocolError as exc:
            await self.error(exc.code, exc.message, exc.reply_to)
            return True
        except Exception:
            # Our bug in decoding: the client gets `internal`, the connection goes on.
            log.exception("%r: decoding a frame failed", self)
            await self.error(
                "internal",
                "reading this frame failed on our side; it has been logged",
                p.peek_id(frame),
            )
            return True
        command = COMMANDS.get(type(envelope.message))
        if command is not None and command.slow and self._commands is not None:
            # It may wait long: run it beside the reader, so that a `cancel` sent
            # after it is read and answered meanwhile.
            await self._slow.acquire()
            self._commands.start_soon(self._run_slow, envelope)
        else:
            await self.run(envelope)
        return True

    async def _run_slow(self, envelope: p.Envelope) -> None:
        try:
            await self.run(envelope)
        finally:
            self._slow.release()

    async def run(self, envelope: p.Envelope) -> None:
        """Run one decoded command and queue its answer (or its error)."""
        try:
            answer = await self.dispatch(envelope)
        except p.ProtocolError as exc:
            await self.error(exc.code, exc.message, envelope.id)
        except Exception:
            log.exception("%r: %s failed", self, envelope.type)
            await self.error(
                "internal", f"{envelope.type} failed on our side; it has been logged", envelope.id
            )
        else:
            if answer is not None:
                await self.put(answer, envelope.id, True)

    async def dispatch(self, envelope: p.Envelope) -> Answer:
        """Run one command by its handler in :data:`~web._commands.COMMANDS`; its direct
        answer, or None when a watch sends it."""
        if self.router is not None and (chat_id := chat_of(envelope.message)) is not None:
            routed = await self.router.route(chat_id, self.seat(chat_id), envelope)
            if routed is not None:
                if routed.seat != p.YOU_ID or chat_id in self.seats:
                    self.seats[chat_id] = routed.seat
                return routed.answer
        return await run_command(self, envelope)

    # --- watching chats ---

    async def open_chat(self, chat_id: str, after_seq: int | None, reply_to: str | None) -> None:
        """Start (or start again) watching a chat; the watch sends the direct answer."""
        old = self.watches.pop(chat_id, None)
        if old is not None:
            self._stop_watch(old)
        assert self._nursery is not None
        # A refusal (no such chat) comes out of start() before anything was sent.
        await self._nursery.start(self._watch, chat_id, after_seq, reply_to)

    async def close_chat(self, chat_id: str) -> p.Ok:
        """Stop watching a chat (fine when it was not being watched, if it exists)."""
        scope = self.watches.pop(chat_id, None)
        if scope is not None:
            self._stop_watch(scope)
        elif not any(chat.id == chat_id for chat in await self.engine.list_chats()):
            raise p.ProtocolError("not_found", f"there is no chat {chat_id!r}")
        return p.Ok()

    async def _watch(
        self,
        chat_id: str,
        after_seq: int | None,
        reply_to: str | None,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        with trio.CancelScope() as scope:
            async with self.engine.watch(chat_id, after_seq) as messages:
                self.watches[chat_id] = scope
                task_status.started()
                await self._forward(chat_id, after_seq, reply_to, messages, scope)
        if self.watches.get(chat_id) is scope:
            del self.watches[chat_id]

    async def _forward(
        self,
        chat_id: str,
        after_seq: int | None,
        reply_to: str | None,
        messages: AsyncIterator[p.ChatMessage | Frame],
        watch: trio.CancelScope,
    ) -> None:
        # The engine's watch starts with a chat_state, or with the missed messages
        # when it can replay them; the direct answer is that chat_state, or `ok`
        # ahead of the replay. When nothing was missed the replay is empty and the
        # watch yields nothing until the chat moves, so `ok` goes out at once: the
        # feed makes that same choice on the iterator's first step, from the very
        # figures read here, so nothing may checkpoint in between (hence put_nowait).
        answered = False
        try:
            if after_seq is not None:
                feed = self.engine.feed(chat_id)
                if feed.beat is None and after_seq == feed.published_seq:
                    answered = True
                    self.outbox.put_nowait(p.to_wire(p.Ok(), reply_to, direct=True))
            async for message in messages:
                if not answered:
                    answered = True
                    if isinstance(message, p.ChatState):
                        await self.put(message, reply_to, True)
                        continue
                    await self.put(p.Ok(), reply_to, True)
                if type(message) is p.Token:
                    # The feed's iterator was this step's checkpoint: a token that
                    # finds the outbox idle goes out from here, one that fits is
                    # queued, and only a full outbox makes the watch wait.
                    frame = token_frame(message)  # built once, shared by the chat's watchers
                    if self.outbox.claim():
                        await self._send_now(frame, watch)
                    elif not self.outbox.try_put(frame):
                        await self.outbox.put(frame)
                elif isinstance(message, dict):
                    await self.outbox.put(message)  # replayed exactly as first sent
                else:
                    await self.put(message, None, False)
        except Exception:
            # A bug in this chat's stream: this watch ends, the connection and its
            # other chats go on, and the client may open the chat again.
            log.exception("%r: the watch of chat %s failed", self, chat_id)
            error = p.Error(
                "internal", "this chat's stream failed on our side; open it again", chat_id
            )
            await self.put(error, None if answered else reply_to, True)
