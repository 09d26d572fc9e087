"""The engine: the one object the gateway and the replay runner talk to.

It owns the store, the model backends, the actor system and every actor in
it, and turns each command into a message to the right actor. Mistakes of
the person raise :class:`protocol.ProtocolError`; anything else is a bug.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Concatenate, ParamSpec, TypeVar

import attrs
import trio

import story
from llm import Backend, LocalBackend, open_backend
from protocol import (
    LATEST_TURNS,
    MAX_CAST,
    MAX_GREETING,
    MAX_OLDER_TURNS,
    MAX_PERSONA,
    WORLD_EVENT_MOVES,
    YOU_ID,
    Artifacts,
    Bot,
    Branches,
    Chat,
    ChatMessage,
    ChatSettings,
    ChatState,
    Entity,
    LorebookInfo,
    Memory,
    OlderTurns,
    ProtocolError,
    Queued,
    RewindPreviewReply,
    ServerMessage,
    Turn,
    WorldEventState,
    author_note_problem,
    decode_server,
    sampler_problem,
    to_wire,
)
from protocol import events as ev
from runtime import (
    ActorError,
    ActorRef,
    ActorSystem,
    RegistryRef,
    RestartPolicy,
    open_actor_system,
)
from store import (
    AsyncStore,
    CommandRecord,
    CommandRun,
    NotFound,
    Store,
    StoredEvent,
    WireFrame,
    attach_lorebooks,
    current_command,
    mark_memory,
    open_store,
    set_author_note,
    start_chat,
    take_seat,
)

from . import _messages as m
from ._bot import BotActor, Forget
from ._chat import ChatActor, wait_settled
from ._feed import ChatFeed
from ._feeds import FeedHooks, Feeds
from ._journal import Journal
from ._library import Library
from ._pool import ClassifierPool
from ._refusals import refusals
from ._services import Services
from ._settings import EngineSettings
from ._significance import SignificanceWorker

log = logging.getLogger("troupe.actors.engine")

T = TypeVar("T")
P = ParamSpec("P")

COMMAND_ROUNDS = 8
"""How many times a command with an id waits for a run of the same id before giving up."""

ASK_TIMEOUT = 60.0
"""Seconds a command waits for its chat actor: longer than the runtime's default
ask, since a rewind snapshots and re-projects, and a command may queue behind one."""


class Engine:
    """Every command of the protocol, as methods; see docs/architecture.md."""

    def __init__(self, svc: Services, system: ActorSystem, server_version: str) -> None:
        self.svc = svc
        self.system = system
        self.server_version = server_version
        # A chat's feed lives while its actor is active or someone holds it (a
        # watcher, a chat_state being read); see _release_feed.
        self._feeds = svc.feeds
        self._holders: dict[str, int] = {}
        self._chats = system.registry(
            "chat",
            factory=lambda key: ChatActor(key, svc),
            idle_timeout=svc.settings.chat_idle_timeout,
            policy=RestartPolicy.always(max_restarts=5, within=60.0),
            on_passivated=self._release_feed,
        )
        self._closing = False
        self._shut_down = trio.Event()
        self._running: dict[tuple[str, str], trio.Event] = {}
        """The commands with an id running now, by ``(chat_id, command_id)``."""
        self.library = Library(svc.store)
        """Cards, lorebooks and chats in and out (the gateway's HTTP side)."""
        self.more_statistics: dict[str, Callable[[], object]] = {}
        """More figures for :meth:`statistics`, by name (a cluster node adds its own)."""

    @property
    def store(self) -> AsyncStore:
        """The store (for the composition root and tests)."""
        return self.svc.store

    async def _run(
        self, fn: Callable[Concatenate[Store, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """A store call; the store's refusals become the protocol's."""
        with refusals():
            return await self.store.run(lambda s: fn(s, *args, **kwargs))

    async def _create(
        self, name: str, event: Callable[[str], ev.Event], read: Callable[[Store, str], T | None]
    ) -> T:
        """Append the event that creates a bot or a persona under a fresh id; what it made."""

        def create(s: Store) -> T:
            new_id = s.new_bot_id(name)  # one id space for everyone in a scene
            s.append(event(new_id))
            made = read(s, new_id)
            assert made is not None
            return made

        return await self._run(create)

    async def _found(self, read: Callable[[Store, str], T | None], id_: str, what: str) -> T:
        """What ``read`` finds under ``id_``, or ``not_found`` naming the ``what``."""
        found = await self._run(read, id_)
        if found is None:
            raise ProtocolError("not_found", f"there is no {what} {id_!r}")
        return found

    # --- commands with an id: a retry answers what the first run did ---

    async def once(
        self,
        chat_id: str,
        command_id: str,
        kind: str,
        run: Callable[[], Awaitable[ServerMessage]],
        recover: Callable[[int], Awaitable[ServerMessage]],
    ) -> ServerMessage:
        """Run a writing command at most once per ``(chat_id, command_id)``; its answer.

        The first run's writes record the command in the same transaction as its
        first event (see ``store._commands``); its answer is kept once known. A
        retry finds the record and gets that answer without running again; one
        that comes while the first still runs waits for it here. A run that
        wrote nothing (refused, or nothing to change) leaves no record, so a
        retry runs again. ``recover(first_event_id)`` rebuilds an answer the
        record lacks (a crash between the write and its answer). The same id
        sent with another ``kind`` of command is ``invalid``.
        """

        async def first() -> str:
            return _answer_text(await run())

        async def rebuilt(first_event_id: int) -> str:
            return _answer_text(await recover(first_event_id))

        return decode_server(
            await self.once_text(chat_id, command_id, kind, first, rebuilt)
        ).message

    async def once_text(
        self,
        chat_id: str,
        command_id: str,
        kind: str,
        run: Callable[[], Awaitable[str]],
        recover: Callable[[int], Awaitable[str]],
    ) -> str:
        """:meth:`once` for a command whose answer is any text (an HTTP import's JSON)."""
        key = (chat_id, command_id)
        for _ in range(COMMAND_ROUNDS):
            running = self._running.get(key)
            if running is not None:
                await running.wait()
                continue
            record = await self._run(Store.command_record, chat_id, command_id)
            if record is not None:
                return await self._answer_of(record, kind, recover)
            if key in self._running:
                continue  # another run of it started while the record was read
            done = self._running[key] = trio.Event()
            try:
                return await self._first_run(CommandRun(chat_id, command_id, kind), run, recover)
            finally:
                del self._running[key]
                done.set()
        raise ProtocolError("busy", f"command {command_id!r} is still being run; try again")

    async def _first_run(
        self,
        command: CommandRun,
        run: Callable[[], Awaitable[str]],
        recover: Callable[[int], Awaitable[str]],
    ) -> str:
        token = current_command.set(command)
        try:
            answer = await run()
        except Exception:
            # Refused before it wrote: nothing is recorded, the error stands. Refused
            # because another writer recorded it first, or failed after it wrote:
            # the record is the answer.
            current_command.reset(token)
            record = await self._run(Store.command_record, command.chat_id, command.command_id)
            if record is None:
                raise
            return await self._answer_of(record, command.kind, recover)
        current_command.reset(token)
        if command.first_event_id is not None:
            with trio.CancelScope(shield=True):  # the write is done: keep what it answered
                await self._run(Store.answer_command, command.chat_id, command.command_id, answer)
        return answer

    async def _answer_of(
        self, record: CommandRecord, kind: str, recover: Callable[[int], Awaitable[str]]
    ) -> str:
        """What a recorded command answered (rebuilt, and kept, if the record lacks it)."""
        if record.kind != kind:
            raise ProtocolError(
                "invalid",
                f"command_id {record.command_id!r} was already used for a {record.kind};"
                " give each command its own",
            )
        if record.answer is not None:
            return record.answer
        answer = await recover(record.first_event_id)
        await self._run(Store.answer_command, record.chat_id, record.command_id, answer)
        return answer

    async def event(self, event_id: int) -> StoredEvent | None:
        """An event of the log (to rebuild a command's lost answer from its first event)."""
        return await self._run(Store.get_event, event_id)

    async def first_user_turn(self, chat_id: str, since: int) -> int | None:
        """The chat's first user turn from event ``since`` on (a lost ``accepted``'s turn)."""
        return await self._run(_first_user_turn, chat_id, since)

    # --- the user and the bots ---

    async def you(self) -> Entity:
        """The person playing."""
        return await self._run(Store.get_you)

    async def set_you(self, name: str, persona: str) -> Entity:
        """Change your name and persona."""
        await self._run(lambda s: s.append(ev.YouUpdated(name.strip(), persona)))
        return await self.you()

    # --- personas and seats ---

    async def list_personas(self) -> tuple[Entity, ...]:
        """Every persona, ``you`` first."""
        return tuple(await self._run(Store.list_personas))

    async def create_persona(self, name: str, persona: str) -> Entity:
        """Create a person who can take a seat at a chat's table."""
        return await self._create(
            name, lambda id_: ev.PersonaCreated(id_, name.strip(), persona), Store.get_persona
        )

    async def persona(self, persona_id: str) -> Entity:
        """A persona, or ``not_found``."""
        return await self._found(Store.get_persona, persona_id, "persona")

    async def update_persona(
        self, persona_id: str, name: str | None = None, persona: str | None = None
    ) -> Entity:
        """Change some of a persona's fields (``you``'s too); ``None`` leaves one as it is."""
        current = await self.persona(persona_id)
        if name is not None and not name.strip():
            raise ProtocolError("bad_message", "name must not be empty")
        if persona_id == YOU_ID:
            return await self.set_you(
                name.strip() if name else current.name,
                persona if persona is not None else current.persona,
            )
        changes = ev.PersonaUpdated(persona_id, name.strip() if name else None, persona)
        await self._run(lambda s: s.append(changes))
        return await self.persona(persona_id)

    async def take_seat(self, chat_id: str, persona_id: str) -> Entity:
        """Seat a persona at a chat's table: it is present there from now on.

        The first time it sits there, a ``seat_taken`` is written and told to
        the chat's watchers; after that a seat costs nothing.
        """
        seated = await self.persona(persona_id)
        chat = await self._run(Store.get_chat, chat_id)
        if chat is None:
            raise ProtocolError("not_found", f"there is no chat {chat_id!r}")
        if persona_id not in chat.people:
            journal = Journal(self.store, self._feeds, chat_id)
            with refusals():
                await journal.write(take_seat, ev.SeatTaken(chat_id, persona_id))
        return seated

    async def list_bots(self) -> tuple[Bot, ...]:
        """Every bot."""
        return tuple(await self._run(Store.list_bots))

    async def create_bot(self, name: str, persona: str, greeting: str = "") -> Bot:
        """Create a character."""
        return await self._create(
            name, lambda id_: ev.BotCreated(id_, name.strip(), persona, greeting), Store.get_bot
        )

    async def bot(self, bot_id: str) -> Bot:
        """A bot, or ``not_found``."""
        return await self._bot(bot_id)

    async def chat(self, chat_id: str) -> Chat:
        """A chat, or ``not_found``."""
        found = await self._run(Store.get_chat, chat_id)
        if found is None:
            raise ProtocolError("not_found", f"there is no chat {chat_id!r}")
        return found

    async def _bot(self, bot_id: str) -> Bot:
        return await self._found(Store.get_bot, bot_id, "bot")

    async def update_bot(
        self,
        bot_id: str,
        name: str | None = None,  # a new name, not blank
        persona: str | None = None,
        greeting: str | None = None,
    ) -> Bot:
        """Change some of a bot's fields; ``None`` leaves a field as it is."""
        await self._bot(bot_id)
        if name is not None and not name.strip():
            raise ProtocolError("bad_message", "name must not be empty")
        await self._run(
            lambda s: s.append(
                ev.BotUpdated(bot_id, name.strip() if name else None, persona, greeting)
            )
        )
        await self._forget_bot(bot_id)
        return await self._bot(bot_id)

    async def update_card(self, bot_id: str, changes: Mapping[str, str]) -> Bot:
        """Edit the main fields of a bot's card, keeping the rest of it; returns the bot.

        ``not_found`` for no such bot, ``invalid`` for a bot without a card or
        a field that cannot be edited; nothing is written then. The bot's
        persona and greeting follow the description and first message.
        """
        await self._bot(bot_id)

        def edit(s: Store) -> None:
            card = s.card_of(bot_id)
            if card is None:
                raise ProtocolError("invalid", f"{bot_id} was not made from a card")
            try:
                edited = story.edit_card(card, changes)
            except story.CardError as exc:
                raise ProtocolError("invalid", exc.message) from None
            s.append(*card_edited(s, bot_id, edited, changes))

        await self._run(edit)
        await self._forget_bot(bot_id)
        return await self._bot(bot_id)

    async def delete_bot(self, bot_id: str) -> None:
        """Delete a bot; chats where it is in the cast (never the host) go on without it."""
        await self._bot(bot_id)
        chats = await self._run(Store.list_chats)
        hosting = [c.id for c in chats if c.host_bot_id == bot_id]
        if hosting:
            raise ProtocolError(
                "invalid", f"{bot_id} hosts chat {', '.join(hosting)}; it cannot be deleted"
            )
        for chat in chats:
            # Only an active chat can have a turn in flight: the others stay asleep.
            ref = self._chats.get(chat.id).current() if bot_id in chat.cast else None
            if ref is not None:
                await wait_settled(ref)
        await self._run(lambda s: s.append(ev.BotDeleted(bot_id)))
        await self._forget_bot(bot_id)

    async def _forget_bot(self, bot_id: str) -> None:
        """Make an active bot actor reload; an inactive one loads afresh when it starts."""
        ref = self.svc.bots.get(bot_id).current()
        if ref is not None:
            await ref.tell(Forget())

    # --- lorebooks ---

    async def list_lorebooks(self) -> tuple[LorebookInfo, ...]:
        """Every imported lorebook, oldest first."""
        return tuple(await self._run(Store.list_lorebooks))

    # --- chats ---

    async def list_chats(self) -> tuple[Chat, ...]:
        """Every chat, newest first."""
        return tuple(await self._run(Store.list_chats))

    async def create_chat(
        self,
        host_bot_id: str | None,
        guest_bot_id: str | None = None,
        location: str | None = None,
        title: str | None = None,
        cast: tuple[str, ...] | None = None,
        greeting: int | None = None,
        continue_from: str | None = None,
    ) -> Chat:
        """Start a chat with a host and a guest, or a cast; the host greets you if it can.

        ``cast`` names 1 to ``MAX_CAST`` bots, the host first; a host or a guest
        given beside it must be the cast's first or second bot. A host made
        from a card opens the chat with one of its greetings: ``greeting``
        indexes them (0, the default, is ``first_mes``; then the alternate
        greetings; then, with more than one character, the group-only ones),
        and an index it does not have is ``invalid``, with nothing written.
        ``continue_from`` names a chat whose memories and edges the bots of both casts bring along
        (unknown: ``not_found``, nothing written); otherwise the chat starts
        knowing nothing of any other.
        """
        members = _cast_of(host_bot_id, guest_bot_id, cast)
        bots = [await self._bot(bot_id) for bot_id in members]
        host, guest = bots[0], bots[1] if len(bots) > 1 else None
        you = await self.you()
        opening = await self._run(
            lambda s: greeting_of(s.card_of(host.id), host, you, greeting, group=len(bots) > 1)
        )
        where = location.strip() if location and location.strip() else None
        name = (title or "").strip() or _title([b.name for b in bots])

        fields = (name, host.id, guest.id if guest else None, where)
        extra = tuple(members) if cast is not None else ()
        # Checked (title and location limits) before the id counter moves: a refused
        # chat writes nothing, not even a skipped id.
        ev.ChatCreated("c0", *fields, cast=extra, continue_from=continue_from)

        def create(s: Store) -> Chat:
            if continue_from is not None and s.get_chat(continue_from) is None:
                raise NotFound(f"there is no chat {continue_from!r} to continue from")
            chat_id = s.new_chat_id()
            created = ev.ChatCreated(chat_id, *fields, cast=extra, continue_from=continue_from)
            ids = start_chat(s, created, ev.SceneOpened(chat_id, where)).ids
            if opening is not None:
                s.append(ev.AssistantTurn(chat_id, host.id, ids[0], None, opening))
            else:
                for bot in bots[:2]:
                    if bot.greeting.strip():
                        s.append(ev.AssistantTurn(chat_id, bot.id, ids[0], None, bot.greeting))
                        break
            chat = s.get_chat(chat_id)
            assert chat is not None
            return chat

        return await self._run(create)

    # --- steering: lorebooks and the author's note ---

    async def attach_lorebook(self, chat_id: str, lorebook_id: str) -> tuple[str, ...]:
        """Attach a lorebook to a chat; returns the chat's books now, in the order attached."""
        return await self._lorebooks(ev.LorebookAttached(chat_id, lorebook_id))

    async def detach_lorebook(self, chat_id: str, lorebook_id: str) -> tuple[str, ...]:
        """Take a lorebook off a chat; returns the chat's books now."""
        return await self._lorebooks(ev.LorebookDetached(chat_id, lorebook_id))

    async def _lorebooks(
        self, change: ev.LorebookAttached | ev.LorebookDetached
    ) -> tuple[str, ...]:
        await self._chat(change.chat_id)
        journal = Journal(self.store, self._feeds, change.chat_id)
        with refusals():
            await journal.write(attach_lorebooks, change)
        return tuple(await self._run(Store.chat_lorebooks, change.chat_id))

    async def set_author_note(self, chat_id: str, text: str, depth: int) -> None:
        """Set the chat's author's note (``invalid`` out of bounds); an empty text removes it."""
        problem = author_note_problem(text, depth)
        if problem is not None:
            raise ProtocolError("invalid", problem)
        await self._chat(chat_id)
        journal = Journal(self.store, self._feeds, chat_id)
        with refusals():
            await journal.write(set_author_note, ev.AuthorNoteSet(chat_id, text, depth))

    async def add_to_cast(self, chat_id: str, bot_id: str) -> Chat:
        """Add a bot to the chat's cast; it enters the scene. Returns the chat as it is now."""
        await self._bot(bot_id)
        return await self._move_cast(ev.CastAdded(chat_id, bot_id))

    async def remove_from_cast(self, chat_id: str, bot_id: str) -> Chat:
        """Take a bot (never the host) out of the chat's cast. Returns the chat as it is now."""
        await self._bot(bot_id)
        return await self._move_cast(ev.CastRemoved(chat_id, bot_id))

    async def enter_scene(self, chat_id: str, bot_id: str) -> None:
        """A cast member who is away comes into the chat's scene."""
        await self._bot(bot_id)
        await self._move_cast(ev.PresenceChanged(chat_id, bot_id, True))

    async def leave_scene(self, chat_id: str, bot_id: str) -> None:
        """A cast member leaves the chat's scene (someone always stays)."""
        await self._bot(bot_id)
        await self._move_cast(ev.PresenceChanged(chat_id, bot_id, False))

    async def mute(self, chat_id: str, bot_id: str) -> Chat:
        """A cast member answers only when ``reply_as`` forces it. Returns the chat now."""
        await self._bot(bot_id)
        return await self._move_cast(ev.MuteChanged(chat_id, bot_id, True))

    async def unmute(self, chat_id: str, bot_id: str) -> Chat:
        """A muted cast member answers as the rules choose again. Returns the chat now."""
        await self._bot(bot_id)
        return await self._move_cast(ev.MuteChanged(chat_id, bot_id, False))

    async def _move_cast(
        self, event: ev.CastAdded | ev.CastRemoved | ev.PresenceChanged | ev.MuteChanged
    ) -> Chat:
        # Through the chat's actor: it refuses a change while a turn is in flight.
        await self._ask(event.chat_id, m.MoveCast(event), type(None))
        chat = await self._run(Store.get_chat, event.chat_id)
        assert chat is not None
        return chat

    async def _chat(self, chat_id: str) -> RegistryRef:
        """The chat's actor (activated by the first message sent to it)."""
        if self._closing:
            raise ProtocolError("invalid", "the server is shutting down")
        if chat_id not in self._feeds:
            chat = await self._run(Store.get_chat, chat_id)
            if chat is None:
                raise ProtocolError("not_found", f"there is no chat {chat_id!r}")
        return self._chats.get(chat_id)

    # --- feeds: one per chat in use ---

    def feed(self, chat_id: str) -> ChatFeed:
        """The feed of a chat in use now (its actor is active or it is watched); else KeyError."""
        return self._feeds(chat_id)

    async def open_feed(self, chat_id: str) -> ChatFeed:
        """The chat's feed, made if it has none now (the chat actor calls this as it starts)."""

        with refusals():
            return await self._feeds.open(chat_id)

    @asynccontextmanager
    async def _held_feed(self, chat_id: str) -> AsyncIterator[ChatFeed]:
        """The chat's feed, kept for the block even if the chat actor passivates meanwhile."""
        await self._chat(chat_id)
        feed = await self.open_feed(chat_id)
        # No checkpoint since open_feed returned: the feed cannot have been dropped.
        self._holders[chat_id] = self._holders.get(chat_id, 0) + 1
        try:
            yield feed
        finally:
            left = self._holders[chat_id] - 1
            if left:
                self._holders[chat_id] = left
            else:
                del self._holders[chat_id]
                self._release_feed(chat_id)

    def _release_feed(self, chat_id: str) -> None:
        """Drop the chat's feed once neither its actor nor anyone else holds it.

        Called when the chat actor passivates and when the last holder lets
        go; the next user makes a fresh feed from the store's latest seq.
        """
        if chat_id not in self._holders and self._chats.get(chat_id).current() is None:
            self._feeds.drop(chat_id)

    async def _ask(self, chat_id: str, message: object, answer: type[T]) -> T:
        """Ask the chat's actor; its answer is an ``answer``, or that is a bug."""
        ref = await self._chat(chat_id)
        run = current_command.get()
        # The actor's task cannot see our context: the command travels with the message.
        sent = message if run is None else m.Commanded(message, run)
        reply = await ref.ask(sent, timeout=ASK_TIMEOUT)
        if not isinstance(reply, answer):
            raise TypeError(f"chat {chat_id} answered {type(message).__name__} with {reply!r}")
        return reply

    async def send_turn(
        self, chat_id: str, prose: str, reply_as: str | None = None, *, person_id: str = YOU_ID
    ) -> int:
        """Take the user's prose; the turn streams on the chat. Returns the user turn id.

        ``reply_as``, a bot present in the chat's scene, answers whatever the
        rules would choose (``not_found`` for no such bot, ``invalid`` for one
        not present; nothing is written then). The turn is ``person_id``'s.
        To let a turn wait behind the one in flight, use :meth:`send_or_queue`.
        """
        answer = await self.send_or_queue(chat_id, prose, reply_as, person_id=person_id)
        assert not isinstance(answer, Queued), "a turn sent without queue never waits"
        return answer

    async def send_or_queue(
        self,
        chat_id: str,
        prose: str,
        reply_as: str | None = None,
        *,
        person_id: str = YOU_ID,
        queue: bool = False,
    ) -> int | Queued:
        """As :meth:`send_turn`; with ``queue``, a turn sent while one is in flight waits in
        the chat's queue (at most ``MAX_QUEUE``, then ``busy``) and this says where."""
        if person_id != YOU_ID:
            await self.persona(person_id)
        start = m.StartTurn(prose, reply_as, person_id, queue)
        reply = await self._ask(chat_id, start, object)
        if not isinstance(reply, int | Queued):
            raise TypeError(f"chat {chat_id} answered a turn with {reply!r}")
        return reply

    async def cancel(self, chat_id: str, *, queued_by: str | None = None) -> None:
        """Stop the beat in flight (a no-op when nothing is); with ``queued_by``, also drop
        that persona's queued turns."""
        await self._ask(chat_id, m.CancelTurn(queued_by=queued_by), type(None))

    async def regenerate(self, chat_id: str, event_id: int, prose: str | None = None) -> int:
        """Replace the latest assistant turn. Returns the user turn id it answers."""
        return await self._ask(chat_id, m.RegenerateTurn(event_id, prose), int)

    async def continue_beat(self, chat_id: str) -> int:
        """Let the chat's latest beat go on; returns the user turn id it answers."""
        return await self._ask(chat_id, m.ContinueLatest(), int)

    async def select_alternative(self, chat_id: str, event_id: int) -> None:
        """Show another alternative of a beat; every watcher gets a fresh chat_state."""
        await self._ask(chat_id, m.SelectAlternativeOf(event_id), type(None))

    async def list_branches(self, chat_id: str) -> Branches:
        """The chat's branches, its first one first."""
        await self._chat(chat_id)
        rows = await self._run(Store.branches, chat_id)
        return Branches(chat_id, tuple(rows))

    async def switch_branch(self, chat_id: str, branch_id: int) -> None:
        """Make a branch current; the whole world follows and every watcher redraws."""
        await self._ask(chat_id, m.SwitchTo(branch_id), type(None))

    async def edit_turn(self, chat_id: str, event_id: int, prose: str) -> int:
        """Say one of the person's turns anew on a branch forked before it; returns its id."""
        return await self._ask(chat_id, m.EditUserTurn(event_id, prose), int)

    async def rewind_preview(self, chat_id: str, event_id: int) -> RewindPreviewReply:
        """What a rewind to ``event_id`` would remove."""
        return await self._ask(chat_id, m.PreviewRewind(event_id), RewindPreviewReply)

    async def rewind(self, chat_id: str, event_id: int) -> None:
        """Rewind the chat; every watcher gets a fresh chat_state."""
        await self._ask(chat_id, m.RewindChat(event_id), type(None))

    async def create_world_event(
        self, chat_id: str, title: str, description: str, artifacts: Artifacts
    ) -> None:
        """Plan a world event in a chat."""
        await self._check_artifacts(chat_id, artifacts)
        await self._ask(chat_id, m.PlanWorldEvent(title, description, artifacts), type(None))

    async def _check_artifacts(self, chat_id: str, artifacts: Artifacts) -> None:
        chat = await self._run(Store.get_chat, chat_id)
        if chat is None:
            raise ProtocolError("not_found", f"there is no chat {chat_id!r}")
        present = {YOU_ID, *chat.people, *chat.cast}
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

    async def resume_queues(self, accept: Callable[[str], bool] | None = None) -> None:
        """Wake the chats whose queued turns a crash left waiting: they run them now.

        ``accept``: only the chats it accepts (a cluster node: the chats it owns).
        """
        for chat_id in await self._run(Store.chats_with_queued_turns):
            if accept is None or accept(chat_id):
                await self._chats.get(chat_id).tell(m.ResumeQueue())

    # --- a cluster node's chats (docs/scale-out.md) ---

    def active_chats(self) -> list[str]:
        """The chats whose actors are active now."""
        return self._chats.active()

    async def stop_chats(self, accept: Callable[[str], bool]) -> None:
        """Stop at once the active chats ``accept`` takes: this node no longer owns them.

        Their writes are refused by then (fenced), so a beat in flight is not
        committed here: the chat's new owner ends it from its checkpoint.
        """
        for key in self._chats.active():
            if accept(key):
                await self._chats.get(key).stop(drain=False)

    async def adopt_chats(self, accept: Callable[[str], bool]) -> list[str]:
        """Take over the chats ``accept`` takes: this node owns them now.

        What the store remembers of them is dropped (another node wrote them
        since), beats their last owner left open are ended from their
        checkpoints, feeds open here go on from the log's latest seq, and
        queued turns run. Returns the chats whose beats were ended.
        """

        # A chat whose actor runs here (its shard was being handed over, and stays) has
        # its beats and its feed in hand: they are not a dead owner's to end or restart.
        running = set(self._chats.active())
        followed = [
            chat_id
            for chat_id, _ in self.svc.feeds.items()
            if accept(chat_id) and chat_id not in running
        ]

        def adopt(s: Store) -> tuple[list[str], dict[str, int]]:
            s.forget_all()
            ended = s.recover(lambda chat_id: accept(chat_id) and chat_id not in running)
            return ended, {chat_id: s.last_seq(chat_id) for chat_id in followed}

        ended, seqs = await self._run(adopt)
        for chat_id, seq in seqs.items():
            if chat_id in self.svc.feeds:
                self.svc.feeds(chat_id).restart(seq)
        await self.resume_queues(accept)
        return ended

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

    async def memory(self, memory_id: int) -> Memory:
        """A memory, or ``not_found``."""
        found = await self._run(Store.get_memory, memory_id)
        if found is None:
            raise ProtocolError("not_found", f"there is no memory {memory_id}")
        return found

    async def pin_memory(self, memory_id: int, pinned: bool) -> Memory:
        """Pin or unpin a memory by hand."""
        memory = await self._run(Store.get_memory, memory_id)
        if memory is None:
            raise ProtocolError("not_found", f"there is no memory {memory_id}")
        await self._chat(memory.chat_id)
        if memory.pinned != pinned:
            kind = ev.MemoryPinned if pinned else ev.MemoryUnpinned
            journal = Journal(self.store, self._feeds, memory.chat_id)
            with refusals():
                await journal.write(mark_memory, kind(memory.chat_id, memory_id, "manual"))
        updated = await self._run(Store.get_memory, memory_id)
        assert updated is not None
        return updated

    async def update_chat_settings(self, chat_id: str, changes: ChatSettings) -> ChatSettings:
        """Change some of a chat's sampler settings (``None`` ones stay); its settings now.

        A value out of bounds is ``invalid`` and nothing is written; the next
        beat of the chat samples with the new settings.
        """
        problem = sampler_problem(changes)
        if problem is not None:
            raise ProtocolError("invalid", f"{problem} (update_chat_settings)")
        if await self._run(Store.get_chat, chat_id) is None:
            raise ProtocolError("not_found", f"there is no chat {chat_id!r}")
        given = attrs.asdict(changes)

        def write(s: Store) -> ChatSettings:
            if any(value is not None for value in given.values()):
                s.append(ev.ChatSettingsUpdated(chat_id, **given))
            return s.chat_settings(chat_id)

        return await self._run(write)

    # --- watching ---

    async def chat_state(self, chat_id: str) -> ChatState:
        """A consistent picture of the chat now."""
        async with self._held_feed(chat_id) as feed:
            return await feed.consistent_state(lambda: self._snapshot(chat_id))

    async def _snapshot(self, chat_id: str) -> ChatState:
        def read(s: Store) -> ChatState:
            chat = s.get_chat(chat_id)
            assert chat is not None
            present = [*s.people_of(chat_id), *chat.cast]
            events = s.world_events(chat_id, tuple(WORLD_EVENT_MOVES))
            # Only the latest turns: a long chat opens as fast as a short one.
            turns, has_older = s.latest_turns(chat_id, LATEST_TURNS)
            return ChatState(
                chat_id,
                chat,
                with_alternatives(s, chat_id, turns),
                tuple(s.edges_among(present, chat_id=chat_id)),
                s.active_scene(chat_id),
                None,
                world_events=tuple(WorldEventState(e.id, e.title, e.status) for e in events),
                has_older=has_older,
                lorebooks=tuple(s.chat_lorebooks(chat_id)),
                author_note=s.author_note(chat_id),
                queue=s.queued_turns(chat_id),
                settings=s.chat_settings(chat_id),
            )

        return await self._run(read)

    async def load_older(self, chat_id: str, before_event_id: int, limit: int) -> OlderTurns:
        """The chat's visible turns before ``before_event_id``: the newest ``limit`` of them.

        ``before_event_id`` is an event of this chat (else ``not_found``); ``limit``
        is 1 to ``MAX_OLDER_TURNS`` (else ``invalid``). Reads only: no actor wakes.
        """
        if not 1 <= limit <= MAX_OLDER_TURNS:
            raise ProtocolError(
                "invalid", f"load_older takes a limit of 1 to {MAX_OLDER_TURNS} turns, not {limit}"
            )

        def read(s: Store) -> OlderTurns:
            if s.get_chat(chat_id) is None:
                raise ProtocolError("not_found", f"there is no chat {chat_id!r}")
            if s.event_chat(before_event_id) != chat_id:
                raise ProtocolError(
                    "not_found", f"event {before_event_id} is not in chat {chat_id}"
                )
            turns, has_older = s.latest_turns(chat_id, limit, before_event_id)
            return OlderTurns(
                chat_id, before_event_id, with_alternatives(s, chat_id, turns), has_older
            )

        return await self._run(read)

    @asynccontextmanager
    async def watch(
        self, chat_id: str, after_seq: int | None = None
    ) -> AsyncIterator[AsyncIterator[ChatMessage | WireFrame]]:
        """Follow a chat: a chat_state (or the missed messages), then live messages."""

        async def replay(seq: int) -> list[WireFrame] | None:
            return await self._run(Store.messages_after, chat_id, seq)

        async with (
            self._held_feed(chat_id) as feed,
            feed.watch(lambda: self._snapshot(chat_id), replay, after_seq) as messages,
        ):
            yield messages

    # --- the whole ---

    def statistics(self) -> dict[str, object]:
        """Live figures: actors, feeds of the chats in use, the classifier pool, the backend,
        and whatever :attr:`more_statistics` adds (a cluster node's own)."""
        return {
            "system": _stats(self.system),
            "chats": {cid: _stats(f.topic) for cid, f in self._feeds.items()},
            "classifier_pool": _stats(self.svc.pool),
            "narrative_backend": _stats(self.svc.narrative),
            **{name: figures() for name, figures in self.more_statistics.items()},
        }

    async def shutdown(self) -> None:
        """Stop taking turns, commit every beat in flight as truncated (``shutdown``), stop.

        Returns within ``shutdown_timeout`` overall, however many beats are in
        flight: the classifier pool closes (each pass takes its default at
        once), each active chat, and only those (a passivated chat is not woken
        up to be stopped), is told to cancel its turn, and the turns are
        waited for once, for three quarters of the bound; the actor system then
        stops every actor within what is left, cancelling a turn still running
        (its beat is committed all the same). Later calls wait for the first.
        """
        if self._closing:
            await self._shut_down.wait()
            return
        self._closing = True
        bound = self.svc.settings.shutdown_timeout
        deadline = trio.current_time() + bound
        try:
            self.svc.pool.close()
            active = [self._chats.get(key).current() for key in self._chats.active()]
            with trio.move_on_at(deadline - bound / 4) as late:
                async with trio.open_nursery() as nursery:
                    for ref in active:
                        if ref is not None:
                            nursery.start_soon(self._stop_chat, ref)
            if late.cancelled_caught:
                log.warning("shutdown: some turns did not settle within %.1fs", 0.75 * bound)
            await self.system.shutdown(timeout=max(deadline - trio.current_time(), 0.01))
        finally:
            self._shut_down.set()

    async def _stop_chat(self, ref: ActorRef) -> None:
        try:
            await ref.ask(m.CancelTurn("shutdown"))
            await wait_settled(ref)
        except ActorError as exc:
            log.warning("chat %s did not stop cleanly: %r", ref.address, exc)


def _answer_text(answer: ServerMessage) -> str:
    """A direct answer as the wire JSON a retry gets back (its own ``reply_to`` added then)."""
    return json.dumps(to_wire(answer), ensure_ascii=False)


def _first_user_turn(s: Store, chat_id: str, since: int) -> int | None:
    row = s.conn.execute(
        "SELECT min(id) FROM event_log WHERE chat_id = ? AND id >= ? "
        "AND kind IN ('user_turn', 'user_turn_edit')",
        (chat_id, since),
    ).fetchall()
    return int(row[0][0]) if row and row[0][0] is not None else None


def with_alternatives(s: Store, chat_id: str, turns: Iterable[Turn]) -> tuple[Turn, ...]:
    """The turns, each beat with alternatives carrying how many and which one it is."""
    turns = tuple(turns)
    # Only the beats of the turns shown: a long chat's older ones are not read.
    alternatives = s.alternatives(chat_id, min((t.user_turn_id for t in turns), default=0))
    return tuple(
        attrs.evolve(
            turn,
            alternatives=len(alternatives[turn.event_id]),
            alternative=alternatives[turn.event_id].index(turn.event_id) + 1,
            alternative_ids=tuple(alternatives[turn.event_id]),
        )
        if len(alternatives.get(turn.event_id, ())) > 1
        else turn
        for turn in turns
    )


def _cast_of(
    host_bot_id: str | None, guest_bot_id: str | None, cast: tuple[str, ...] | None
) -> tuple[str, ...]:
    """The cast a ``create_chat`` asks for: ``cast``, or its host and guest."""
    if cast is None:
        if host_bot_id is None:
            raise ProtocolError("invalid", "a chat needs a host_bot_id or a cast")
        if guest_bot_id == host_bot_id:
            raise ProtocolError("invalid", "the guest must be another bot than the host")
        return (host_bot_id,) if guest_bot_id is None else (host_bot_id, guest_bot_id)
    if not 1 <= len(cast) <= MAX_CAST:
        raise ProtocolError("invalid", f"a cast names 1 to {MAX_CAST} bots, not {len(cast)}")
    if len(set(cast)) != len(cast):
        raise ProtocolError("invalid", "a cast names each bot once")
    if host_bot_id is not None and host_bot_id != cast[0]:
        raise ProtocolError("invalid", "the host is the cast's first bot")
    if guest_bot_id is not None and cast[1:2] != (guest_bot_id,):
        raise ProtocolError("invalid", "the guest is the cast's second bot")
    return cast


def card_edited(
    s: Store, bot_id: str, card: story.Card, changes: Mapping[str, str]
) -> list[ev.Event]:
    """The events of a card edit: the card, then the bot's persona or greeting if they follow."""
    row = s.conn.execute("SELECT avatar FROM bot_cards WHERE bot_id = ?", (bot_id,)).fetchall()
    found = row[0][0] if row else None
    avatar = found if isinstance(found, str) else None
    events: list[ev.Event] = [ev.BotCard(bot_id, card.spec, card.source, avatar)]
    persona = card.description[:MAX_PERSONA] if "description" in changes else None
    greeting = card.first_mes[:MAX_GREETING] if "first_mes" in changes else None
    if persona is not None or greeting is not None:
        events.append(ev.BotUpdated(bot_id, None, persona, greeting))
    return events


def greeting_of(
    card: story.Card | None, host: Bot, you: Entity, index: int | None, *, group: bool
) -> str | None:
    """The host's opening line from its card, by ``index``; None for a host without a card.

    Macros are filled with the names of the chat: the host's, and yours.
    """
    if card is None:
        if index not in (None, 0):
            raise ProtocolError("invalid", f"{host.id} has no card: it has no greeting {index}")
        return None
    options = [card.first_mes, *card.alternate_greetings]
    if group:
        options.extend(card.group_only_greetings)
    at = 0 if index is None else index
    if not 0 <= at < len(options):
        raise ProtocolError(
            "invalid",
            f"{host.name} has greetings 0 to {len(options) - 1}; there is no greeting {at}",
        )
    text = story.fill_macros(options[at], card.nickname or host.name, you.name).strip()
    return text or None


def _title(names: list[str]) -> str:
    """A chat's title made from its cast's names."""
    if len(names) == 1:
        return f"With {names[0]}"
    return f"{', '.join(names[:-1])} and {names[-1]}"


def _stats(thing: object) -> object:
    method = getattr(thing, "statistics", None)
    if method is None:
        return None
    try:
        value = method()
    except Exception as exc:
        return {"error": repr(exc)}
    if attrs.has(type(value)):
        return attrs.asdict(value)  # a snapshot, as plain dicts and lists
    return value if isinstance(value, dict) else repr(value)


@asynccontextmanager
async def open_engine(
    settings: EngineSettings,
    *,
    narrative: Backend | None = None,
    classifier: Backend | None = None,
    server_version: str = "troupe",
    store: AsyncStore | None = None,
    feed_hooks: FeedHooks | None = None,
    resume: bool = True,
) -> AsyncIterator[Engine]:
    """Open the store, the backends and the actors; on exit, shut down without losing beats.

    ``narrative`` and ``classifier`` override the backends the settings name (tests and the
    replay runner hand in a scripted backend they keep a hand on). A cluster node hands
    in its own ``store`` (on PostgreSQL, fenced), the ``feed_hooks`` that relay chats
    between nodes, and ``resume=False``: it resumes the queued turns of the chats it owns
    as it comes to own them (docs/scale-out.md).
    """
    async with AsyncExitStack() as stack:
        if store is None:
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
        feeds = Feeds(store, max_buffer=settings.watch_buffer, hooks=feed_hooks)
        pool = ClassifierPool(classifier, timeout=settings.classifier_timeout)
        significance = await system.spawn(
            lambda: SignificanceWorker(store, feeds, pool, settings.auto_pin_cap),
            address="worker:significance",
            policy=RestartPolicy.always(max_restarts=10, within=60.0),
            mailbox_size=1024,
        )
        bots = system.registry(
            "bot",
            factory=lambda key: BotActor(key, store),
            idle_timeout=settings.chat_idle_timeout,
            policy=RestartPolicy.always(max_restarts=5, within=60.0),
        )
        if settings.judge == "auto":
            small = isinstance(classifier, LocalBackend)
            settings = attrs.evolve(settings, judge="rules" if small else "model")
        svc = Services(settings, store, narrative, feeds, pool, significance, bots)
        engine = Engine(svc, system, server_version)
        if resume:
            await engine.resume_queues()
        try:
            yield engine
        finally:
            with trio.CancelScope(shield=True):
                await engine.shutdown()
