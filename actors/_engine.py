"""The engine: the one object the gateway and the replay runner talk to.

It owns the store, the model backends, the actor system and every actor in
it, and turns each command into a message to the right actor. Mistakes of
the person raise :class:`protocol.ProtocolError`; anything else is a bug.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any, TypeVar

import trio

from llm import Backend, open_backend
from protocol import (
    YOU_ID,
    Artifacts,
    Bot,
    Chat,
    ChatMessage,
    ChatState,
    Entity,
    Memory,
    MemoryNote,
    ProtocolError,
    RewindPreviewReply,
    WorldEventState,
)
from protocol import events as ev
from runtime import ActorSystem, RestartPolicy, open_actor_system
from store import AsyncStore, Invalid, NotFound, Store, open_store

from . import _messages as m
from ._bot import BotActor, Forget
from ._chat import ChatActor, wait_settled
from ._feed import ChatFeed
from ._pool import ClassifierPool
from ._services import Services
from ._settings import EngineSettings
from ._significance import SignificanceWorker

log = logging.getLogger("troupe.actors.engine")

T = TypeVar("T")

ASK_TIMEOUT = 60.0


class Engine:
    """Every command of the protocol, as methods; see docs/architecture.md."""

    def __init__(self, svc: Services, system: ActorSystem, server_version: str) -> None:
        self.svc = svc
        self.system = system
        self.server_version = server_version
        self._feeds: dict[str, ChatFeed] = {}
        self._chats = system.registry(
            "chat",
            factory=lambda key: ChatActor(key, svc),
            idle_timeout=svc.settings.chat_idle_timeout,
            policy=RestartPolicy.always(max_restarts=5, within=60.0),
        )
        self._closing = False

    @property
    def store(self) -> AsyncStore:
        """The store (for the composition root and tests)."""
        return self.svc.store

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        """A store call; the store's refusals become the protocol's."""
        try:
            return await self.store.run(fn, *args)
        except NotFound as exc:
            raise ProtocolError("not_found", str(exc)) from None
        except Invalid as exc:
            raise ProtocolError("invalid", str(exc)) from None

    # --- the user and the bots ---

    async def you(self) -> Entity:
        """The person playing."""
        return await self._run(Store.get_you)

    async def set_you(self, name: str, persona: str) -> Entity:
        """Change your name and persona."""
        await self._run(lambda s: s.append(ev.YouUpdated(name.strip(), persona)))
        return await self.you()

    async def list_bots(self) -> tuple[Bot, ...]:
        """Every bot."""
        return tuple(await self._run(Store.list_bots))

    async def create_bot(self, name: str, persona: str, greeting: str = "") -> Bot:
        """Create a character."""

        def create(s: Store) -> Bot:
            bot_id = s.new_bot_id(name)
            s.append(ev.BotCreated(bot_id, name.strip(), persona, greeting))
            bot = s.get_bot(bot_id)
            assert bot is not None
            return bot

        return await self._run(create)

    async def _bot(self, bot_id: str) -> Bot:
        bot = await self._run(Store.get_bot, bot_id)
        if bot is None:
            raise ProtocolError("not_found", f"there is no bot {bot_id!r}")
        return bot

    async def update_bot(
        self,
        bot_id: str,
        name: str | None = None,
        persona: str | None = None,
        greeting: str | None = None,
    ) -> Bot:
        """Change some of a bot's fields."""
        await self._bot(bot_id)
        if name is not None and not name.strip():
            raise ProtocolError("bad_message", "name must not be empty")
        await self._run(
            lambda s: s.append(
                ev.BotUpdated(bot_id, name.strip() if name else None, persona, greeting)
            )
        )
        await self.svc.bots.get(bot_id).tell(Forget())
        return await self._bot(bot_id)

    async def delete_bot(self, bot_id: str) -> None:
        """Delete a bot; chats where it is the guest go on one to one."""
        await self._bot(bot_id)
        chats = await self._run(Store.list_chats)
        hosting = [c.id for c in chats if c.host_bot_id == bot_id]
        if hosting:
            raise ProtocolError(
                "invalid", f"{bot_id} hosts chat {', '.join(hosting)}; it cannot be deleted"
            )
        for chat in chats:
            if chat.guest_bot_id == bot_id:
                await wait_settled(self._chats.get(chat.id))
        await self._run(lambda s: s.append(ev.BotDeleted(bot_id)))
        await self.svc.bots.get(bot_id).tell(Forget())

    # --- chats ---

    async def list_chats(self) -> tuple[Chat, ...]:
        """Every chat, newest first."""
        return tuple(await self._run(Store.list_chats))

    async def create_chat(
        self,
        host_bot_id: str,
        guest_bot_id: str | None = None,
        location: str | None = None,
        title: str | None = None,
    ) -> Chat:
        """Start a chat; the host greets you if it has a greeting."""
        host = await self._bot(host_bot_id)
        guest = await self._bot(guest_bot_id) if guest_bot_id else None
        if guest is not None and guest.id == host.id:
            raise ProtocolError("invalid", "the guest must be another bot than the host")
        where = location.strip() if location and location.strip() else None
        name = (title or "").strip() or (
            f"{host.name} and {guest.name}" if guest else f"With {host.name}"
        )

        fields = (name, host.id, guest.id if guest else None, where)
        # Checked (title and location limits) before the id counter moves: a refused
        # chat writes nothing, not even a skipped id.
        ev.ChatCreated("c0", *fields)

        def create(s: Store) -> Chat:
            chat_id = s.new_chat_id()
            ids = s.append(ev.ChatCreated(chat_id, *fields), ev.SceneOpened(chat_id, where)).ids
            for bot in (host, guest):
                if bot is not None and bot.greeting.strip():
                    s.append(ev.AssistantTurn(chat_id, bot.id, ids[0], None, bot.greeting))
                    break
            chat = s.get_chat(chat_id)
            assert chat is not None
            return chat

        return await self._run(create)

    async def _chat(self, chat_id: str) -> Any:
        if self._closing:
            raise ProtocolError("invalid", "the server is shutting down")
        if chat_id not in self._feeds:
            chat = await self._run(Store.get_chat, chat_id)
            if chat is None:
                raise ProtocolError("not_found", f"there is no chat {chat_id!r}")
            last = await self._run(Store.last_seq, chat_id)
            if chat_id not in self._feeds:
                self._feeds[chat_id] = ChatFeed(
                    chat_id, last, max_buffer=self.svc.settings.watch_buffer
                )
        return self._chats.get(chat_id)

    def feed(self, chat_id: str) -> ChatFeed:
        """The feed of a chat the engine has touched."""
        return self._feeds[chat_id]

    async def _ask(self, chat_id: str, message: object) -> Any:
        ref = await self._chat(chat_id)
        return await ref.ask(message, timeout=ASK_TIMEOUT)

    async def send_turn(self, chat_id: str, prose: str) -> int:
        """Take the user's prose; the turn streams on the chat. Returns the user turn id."""
        return int(await self._ask(chat_id, m.StartTurn(prose)))

    async def cancel(self, chat_id: str) -> None:
        """Stop the beat in flight; a no-op when nothing is."""
        await self._ask(chat_id, m.CancelTurn())

    async def regenerate(self, chat_id: str, event_id: int, prose: str | None = None) -> int:
        """Replace the latest assistant turn. Returns the user turn id it answers."""
        return int(await self._ask(chat_id, m.RegenerateTurn(event_id, prose)))

    async def rewind_preview(self, chat_id: str, event_id: int) -> RewindPreviewReply:
        """What a rewind to ``event_id`` would remove."""
        reply: RewindPreviewReply = await self._ask(chat_id, m.PreviewRewind(event_id))
        return reply

    async def rewind(self, chat_id: str, event_id: int) -> None:
        """Rewind the chat; every watcher gets a fresh chat_state."""
        await self._ask(chat_id, m.RewindChat(event_id))

    async def create_world_event(
        self, chat_id: str, title: str, description: str, artifacts: Artifacts
    ) -> None:
        """Plan a world event in a chat."""
        await self._check_artifacts(chat_id, artifacts)
        await self._ask(chat_id, m.PlanWorldEvent(title, description, artifacts))

    async def _check_artifacts(self, chat_id: str, artifacts: Artifacts) -> None:
        chat = await self._run(Store.get_chat, chat_id)
        if chat is None:
            raise ProtocolError("not_found", f"there is no chat {chat_id!r}")
        present = {YOU_ID, chat.host_bot_id, *([chat.guest_bot_id] if chat.guest_bot_id else [])}
        named = [
            *(x for a in artifacts.knowledge_facts for x in (a.source_id, a.target_id)),
            *(x for a in artifacts.relationship_changes for x in (a.source_id, a.target_id)),
            *(a.holder_id for a in artifacts.acquired_objects),
        ]
        strangers = sorted(set(named) - present)
        if strangers:
            raise ProtocolError(
                "invalid", f"artifacts name {', '.join(strangers)}, who are not in this chat"
            )

    async def idle(self) -> None:
        """Wait until the background scoring told so far is done (for headless runs)."""
        await self.svc.significance.ask(m.Flush(), timeout=ASK_TIMEOUT)

    async def wait_settled(self, chat_id: str) -> None:
        """Wait until no turn of the chat is in flight (for headless runs)."""
        await wait_settled(await self._chat(chat_id))

    # --- memories ---

    async def list_memories(self, bot_id: str, chat_id: str | None = None) -> tuple[Memory, ...]:
        """A bot's memories, optionally of one chat."""
        await self._bot(bot_id)
        return tuple(await self._run(Store.list_memories, bot_id, chat_id))

    async def pin_memory(self, memory_id: int, pinned: bool) -> Memory:
        """Pin or unpin a memory by hand."""
        memory = await self._run(Store.get_memory, memory_id)
        if memory is None:
            raise ProtocolError("not_found", f"there is no memory {memory_id}")
        await self._chat(memory.chat_id)
        if memory.pinned != pinned:
            kind = ev.MemoryPinned if pinned else ev.MemoryUnpinned
            chat_id = memory.chat_id

            def write(s: Store) -> Any:
                def note(_ids: tuple[int, ...]) -> list[MemoryNote]:
                    updated = s.get_memory(memory_id)
                    return [MemoryNote(chat_id, updated)] if updated else []

                return s.append(kind(chat_id, memory_id, "manual"), render=note).messages

            self.feed(chat_id).deliver(await self._run(write))
        updated = await self._run(Store.get_memory, memory_id)
        assert updated is not None
        return updated

    # --- watching ---

    async def chat_state(self, chat_id: str) -> ChatState:
        """A consistent picture of the chat now."""
        await self._chat(chat_id)
        return await self.feed(chat_id).consistent_state(lambda: self._snapshot(chat_id))

    async def _snapshot(self, chat_id: str) -> ChatState:
        def read(s: Store) -> ChatState:
            chat = s.get_chat(chat_id)
            assert chat is not None
            present = [YOU_ID, chat.host_bot_id]
            if chat.guest_bot_id:
                present.append(chat.guest_bot_id)
            events = s.world_events(chat_id, ("planned", "active", "completed", "cancelled"))
            return ChatState(
                chat_id,
                chat,
                tuple(s.timeline(chat_id)),
                tuple(s.edges_among(present)),
                s.active_scene(chat_id),
                None,
                world_events=tuple(WorldEventState(e.id, e.title, e.status) for e in events),
            )

        return await self._run(read)

    @asynccontextmanager
    async def watch(
        self, chat_id: str, after_seq: int | None = None
    ) -> AsyncIterator[AsyncIterator[ChatMessage | dict[str, Any]]]:
        """Follow a chat: a chat_state (or the missed messages), then live messages."""
        await self._chat(chat_id)
        feed = self.feed(chat_id)

        async def replay(seq: int) -> list[dict[str, Any]] | None:
            return await self._run(Store.messages_after, chat_id, seq)

        async with feed.watch(lambda: self._snapshot(chat_id), replay, after_seq) as messages:
            yield messages

    # --- the whole ---

    def statistics(self) -> dict[str, Any]:
        """Live figures: actors, feeds, the pool and the backends."""
        return {
            "system": _stats(self.system),
            "chats": {cid: _stats(f.topic) for cid, f in self._feeds.items()},
            "classifier_pool": _stats(self.svc.pool),
            "narrative_backend": _stats(self.svc.narrative),
        }

    async def shutdown(self) -> None:
        """Stop taking turns and commit every beat in flight as truncated (``shutdown``)."""
        self._closing = True
        with trio.move_on_after(self.svc.settings.shutdown_timeout):
            async with trio.open_nursery() as nursery:
                for chat_id in list(self._feeds):
                    nursery.start_soon(self._stop_chat, chat_id)

    async def _stop_chat(self, chat_id: str) -> None:
        ref = self._chats.get(chat_id)
        try:
            await ref.ask(m.CancelTurn("shutdown"), timeout=2.0)
            await wait_settled(ref)
        except Exception:
            log.exception("chat %s did not stop cleanly", chat_id)


def _stats(thing: object) -> Any:
    method = getattr(thing, "statistics", None)
    if method is None:
        return None
    try:
        value = method()
    except Exception as exc:
        return {"error": repr(exc)}
    return value if isinstance(value, dict) else repr(value)


@asynccontextmanager
async def open_engine(
    settings: EngineSettings,
    *,
    narrative: Backend | None = None,
    classifier: Backend | None = None,
    server_version: str = "troupe",
) -> AsyncIterator[Engine]:
    """Open the store, the backends and the actors; on exit, shut down without losing beats.

    ``narrative`` and ``classifier`` override the backends the settings name (tests and the
    replay runner hand in a scripted backend they keep a hand on).
    """
    async with AsyncExitStack() as stack:
        store = await stack.enter_async_context(
            open_store(
                settings.db_path,
                data_dir=settings.data_dir,
                keep_snapshots=settings.keep_snapshots,
            )
        )
        if narrative is None:
            narrative = await stack.enter_async_context(open_backend(settings.narrative))
        if classifier is None:
            if settings.classifier is None:
                classifier = narrative
            else:
                classifier = await stack.enter_async_context(open_backend(settings.classifier))
        system = await stack.enter_async_context(
            open_actor_system(shutdown_timeout=settings.shutdown_timeout)
        )
        engine_ref: list[Engine] = []
        svc = Services(settings, store, narrative, feed=lambda cid: engine_ref[0].feed(cid))
        capacity = (settings.classifier or settings.narrative).max_connections
        svc.pool = ClassifierPool(
            classifier, capacity=capacity, timeout=settings.classifier_timeout
        )
        svc.significance = await system.spawn(
            lambda: SignificanceWorker(svc),
            address="worker:significance",
            policy=RestartPolicy.always(max_restarts=10, within=60.0),
            mailbox_size=1024,
        )
        svc.bots = system.registry(
            "bot",
            factory=lambda key: BotActor(key, svc),
            idle_timeout=settings.chat_idle_timeout,
            policy=RestartPolicy.always(max_restarts=5, within=60.0),
        )
        engine = Engine(svc, system, server_version)
        engine_ref.append(engine)
        try:
            yield engine
        finally:
            with trio.CancelScope(shield=True):
                await engine.shutdown()
