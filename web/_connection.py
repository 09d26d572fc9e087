"""One WebSocket connection: decode, rate-limit, dispatch, answer, and watch chats.

Each watched chat is a task that forwards the engine's messages for that chat.
A slow client only slows its own tasks: the engine's topic buffers for it
(merging tokens, and past a bound sending a fresh chat_state instead), so
neither the beat nor the other connections ever wait for it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import trio
from trio_websocket import ConnectionClosed, WebSocketConnection

import protocol as p
from actors import Engine
from protocol import MAX_FRAME_BYTES

log = logging.getLogger("troupe.web")


class TokenBucket:
    """``rate`` messages a second on average, bursts up to ``burst``."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = float(burst)
        self.stamp = trio.current_time()

    def take(self) -> bool:
        """Spend one message; False when the client sends too fast."""
        now = trio.current_time()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


class Connection:
    """Serves one client until it goes away."""

    def __init__(
        self,
        ws: WebSocketConnection,
        engine: Engine,
        statistics: Callable[[], dict[str, Any]],
        rate: float,
        burst: int,
    ) -> None:
        self.ws = ws
        self.engine = engine
        self.statistics = statistics
        self.bucket = TokenBucket(rate, burst)
        self.watches: dict[str, trio.CancelScope] = {}
        self.sent = 0
        self.received = 0
        self._nursery: trio.Nursery | None = None

    async def send(self, data: dict[str, Any]) -> None:
        """Send one JSON frame."""
        await self.ws.send_message(json.dumps(data, ensure_ascii=False))
        self.sent += 1

    async def send_message(
        self, message: p.ServerMessage, reply_to: str | None = None, *, direct: bool = False
    ) -> None:
        """Send a protocol message."""
        await self.send(p.to_wire(message, reply_to, direct=direct))

    async def error(self, code: p.ErrorCode, message: str, reply_to: str | None = None) -> None:
        """Send an error answer."""
        await self.send_message(p.Error(code, message), reply_to, direct=True)

    async def serve(self) -> None:
        """Read frames until the client closes; answer each."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            try:
                while True:
                    frame = await self.ws.get_message()
                    self.received += 1
                    if not await self.handle_frame(frame):
                        break
            except ConnectionClosed:
                pass
            finally:
                nursery.cancel_scope.cancel()

    async def handle_frame(self, frame: str | bytes) -> bool:
        """Answer one frame; False when the connection must close."""
        if isinstance(frame, bytes):
            await self.error("bad_message", "binary frames are not part of the protocol")
            return True
        if len(frame.encode("utf-8", "surrogatepass")) > MAX_FRAME_BYTES:
            await self.error("too_large", "the frame is over 64 KiB")
            await self.ws.aclose(1009, "frame too large")
            return False
        if not self.bucket.take():
            reply_to = _peek_id(frame)
            await self.error("rate_limited", "too many messages; slow down", reply_to)
            return True
        try:
            envelope = p.decode_client(frame)
        except p.ProtocolError as exc:
            await self.error(exc.code, exc.message, exc.reply_to)
            if exc.code == "too_large" and "frame" in exc.message:
                await self.ws.aclose(1009, "frame too large")
                return False
            return True
        try:
            answer = await self.dispatch(envelope)
        except p.ProtocolError as exc:
            await self.error(exc.code, exc.message, envelope.id)
        except (ConnectionClosed, trio.Cancelled):
            raise
        except Exception:
            log.exception("%s failed", envelope.type)
            await self.error("internal", "something went wrong on our side", envelope.id)
        else:
            if answer is not None:
                await self.send_message(answer, envelope.id, direct=True)
        return True

    async def dispatch(self, envelope: p.Envelope) -> p.ServerMessage | None:
        """Run one command; the direct answer (None when the watch sends it)."""
        m = envelope.message
        engine = self.engine
        if isinstance(m, p.Hello):
            if m.protocol != p.PROTOCOL_VERSION:
                raise p.ProtocolError(
                    "bad_message", f"this server speaks protocol {p.PROTOCOL_VERSION}"
                )
            return p.Welcome(p.PROTOCOL_VERSION, engine.server_version, await engine.you())
        if isinstance(m, p.SetYou):
            return p.You(await engine.set_you(m.name, m.persona))
        if isinstance(m, p.ListBots):
            return p.Bots(await engine.list_bots())
        if isinstance(m, p.CreateBot):
            return p.BotReply(await engine.create_bot(m.name, m.persona, m.greeting))
        if isinstance(m, p.UpdateBot):
            return p.BotReply(await engine.update_bot(m.bot_id, m.name, m.persona, m.greeting))
        if isinstance(m, p.DeleteBot):
            await engine.delete_bot(m.bot_id)
            return p.Ok()
        if isinstance(m, p.ListChats):
            return p.Chats(await engine.list_chats())
        if isinstance(m, p.CreateChat):
            return p.ChatReply(
                await engine.create_chat(m.host_bot_id, m.guest_bot_id, m.location, m.title)
            )
        if isinstance(m, p.OpenChat):
            await self.open_chat(m.chat_id, m.after_seq, envelope.id)
            return None
        if isinstance(m, p.CloseChat):
            scope = self.watches.pop(m.chat_id, None)
            if scope is not None:
                scope.cancel()
            return p.Ok()
        if isinstance(m, p.SendTurn):
            return p.Accepted(m.chat_id, await engine.send_turn(m.chat_id, m.prose))
        if isinstance(m, p.Cancel):
            await engine.cancel(m.chat_id)
            return p.Ok()
        if isinstance(m, p.Regenerate):
            return p.Accepted(m.chat_id, await engine.regenerate(m.chat_id, m.event_id, m.prose))
        if isinstance(m, p.RewindPreview):
            return await engine.rewind_preview(m.chat_id, m.event_id)
        if isinstance(m, p.Rewind):
            await engine.rewind(m.chat_id, m.event_id)
            return p.Rewound(m.chat_id, m.event_id)
        if isinstance(m, p.ListMemories):
            return p.Memories(await engine.list_memories(m.bot_id, m.chat_id))
        if isinstance(m, p.PinMemory):
            return p.MemoryReply(await engine.pin_memory(m.memory_id, m.pinned))
        if isinstance(m, p.CreateWorldEvent):
            await engine.create_world_event(m.chat_id, m.title, m.description, m.artifacts)
            return p.Ok()
        if isinstance(m, p.GetStatistics):
            return p.Statistics(self.statistics())
        raise p.ProtocolError("unknown_type", f"{envelope.type} is not handled")

    async def open_chat(self, chat_id: str, after_seq: int | None, reply_to: str | None) -> None:
        """Start (or restart) watching a chat; its first message is the direct answer."""
        old = self.watches.pop(chat_id, None)
        if old is not None:
            old.cancel()
        assert self._nursery is not None
        await self._nursery.start(self._watch, chat_id, after_seq, reply_to)

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
                first = True
                try:
                    async for message in messages:
                        if isinstance(message, dict):
                            await self.send(message)
                        elif first and isinstance(message, p.ChatState):
                            await self.send_message(message, reply_to, direct=True)
                        else:
                            await self.send_message(message)
                        first = False
                except ConnectionClosed:
                    pass
        if self.watches.get(chat_id) is scope:
            del self.watches[chat_id]


def _peek_id(frame: str) -> str | None:
    try:
        data = json.loads(frame)
    except ValueError:
        return None
    value = data.get("id") if isinstance(data, dict) else None
    return value if isinstance(value, str) and len(value) <= 64 else None


Handler = Callable[..., Awaitable[Any]]
