"""The chat actor: one per chat; it serializes the chat's turns.

Commands arrive in its mailbox one at a time. A turn runs as the actor's long
work, so the mailbox stays free for ``cancel`` while a beat streams; a second
turn while one is in flight is refused with ``busy`` and writes nothing, unless
it asks to be queued: then it waits in the chat's queue (at most ``MAX_QUEUE``,
kept on disk by ``store.queue_turn``) and runs, in arrival order, once the turns
ahead of it settle. The same work runs them one after the other.
"""

from __future__ import annotations

import logging

import trio
from attrs import evolve

from protocol import MAX_QUEUE, YOU_ID, ProtocolError, Queued, QueuedTurn, RewindPreviewReply, Turn
from protocol import events as ev
from runtime import Actor, ActorRef, RegistryRef
from store import (
    Store,
    add_user_turn,
    current_command,
    drop_queued,
    move_cast,
    plan_world_event,
    queue_turn,
    start_queued,
)
from story import (
    Cast,
    ContinueAsked,
    PersonSaid,
    Regenerate,
    parse_prose,
    presence_by_rules,
    rewind_summary,
)

from ._cast import load_cast
from ._driver import TurnDriver
from ._feed import ChatFeed
from ._journal import Journal
from ._messages import (
    CancelTurn,
    Commanded,
    ContinueLatest,
    EditUserTurn,
    MoveCast,
    PlanWorldEvent,
    PreviewRewind,
    RegenerateTurn,
    ResumeQueue,
    RewindChat,
    SelectAlternativeOf,
    StartTurn,
    SwitchTo,
    WaitSettled,
)
from ._refusals import refusals
from ._services import Services

log = logging.getLogger("troupe.actors.chat")


class ChatActor(Actor):
    """Coordinates the turns of one chat."""

    replies_with = (ProtocolError,)  # the person's mistakes are answers, not crashes

    def __init__(self, chat_id: str, svc: Services) -> None:
        self.chat_id = chat_id
        self.svc = svc
        self.feed: ChatFeed
        self.journal = Journal(svc.store, svc.feeds, chat_id)
        self.turn: TurnDriver | None = None
        self.turns = 0
        self.queued: list[QueuedTurn] = []
        """The chat's queue as the store keeps it, next first; only this actor changes it."""
        self.idle = trio.Event()
        """Set while no turn is in flight and none is queued."""
        self.idle.set()
        self.stopping = False
        self.starting = False
        self.runner: object | None = None

    async def on_start(self) -> None:
        # The feed lives with the active chat: made (or found) on each activation,
        # dropped by the engine once the actor passivated and nobody watches.
        self.feed = await self.svc.feeds.open(self.chat_id)
        # A restarted actor starts with no turn in flight; a beat its predecessor left
        # open (a crash between started and ended) is closed as interrupted.
        self.turn = None
        # Turns queued before a crash wait on disk: the first message (ResumeQueue,
        # sent as the engine opens) runs them.
        self.queued = list(await self.svc.store.run(Store.queued_turns, self.chat_id))

    async def on_stop(self) -> None:
        self.stopping = True  # what is still queued stays on disk for the next start
        if self.turn is not None:
            self.turn.cancel("shutdown")

    async def handle(self, message: object) -> object:
        if isinstance(message, Commanded):
            # The command's writes, made from this task, record it (see store._commands).
            token = current_command.set(message.run)
            try:
                with refusals():
                    return await self._command(message.message)
            finally:
                current_command.reset(token)
        with refusals():
            return await self._command(message)

    async def _command(self, message: object) -> object:
        if self.queued and self.idle.is_set() and not self.stopping:
            self._launch(None, None)  # turns a crash left queued run first
        if isinstance(message, StartTurn):
            return await self._start_turn(message)
        if isinstance(message, CancelTurn):
            if message.reason == "shutdown":
                self.stopping = True
            if self.turn is not None:
                self.turn.cancel(message.reason)
            if message.queued_by is not None:
                await self._drop_queued(message.queued_by)
            return None
        if isinstance(message, ResumeQueue):
            return None  # the queue, if any, started above
        if isinstance(message, RegenerateTurn):
            return await self._regenerate(message.event_id, message.prose)
        if isinstance(message, SelectAlternativeOf):
            await self._select(message.event_id)
            return None
        if isinstance(message, SwitchTo):
            await self._switch(message.branch_id)
            return None
        if isinstance(message, EditUserTurn):
            return await self._edit(message.event_id, message.prose)
        if isinstance(message, ContinueLatest):
            return await self._continue()
        if isinstance(message, PreviewRewind):
            return await self._preview(message.event_id)
        if isinstance(message, RewindChat):
            await self._rewind(message.event_id)
            return None
        if isinstance(message, PlanWorldEvent):
            await self._plan(message)
            return None
        if isinstance(message, MoveCast):
            self._ensure_idle()
            await self.journal.write(move_cast, [message.event])
            return None
        if isinstance(message, WaitSettled):
            return None if self.idle.is_set() else self.idle
        raise TypeError(f"a chat does not handle {type(message).__name__}")

    def statistics(self) -> dict[str, int | bool]:
        """Turns run, whether one is in flight, and how many wait in the queue."""
        return {
            "turns": self.turns,
            "in_flight": self.turn is not None,
            "queued": len(self.queued),
        }

    # --- commands ---

    def _busy(self) -> bool:
        in_flight = self.turn is not None and not self.turn.done.is_set()
        return in_flight or self.starting or bool(self.queued)

    def _ensure_idle(self) -> None:
        if self._busy():
            raise ProtocolError("busy", "a turn of this chat is still in flight; wait or cancel")

    async def _start_turn(self, m: StartTurn) -> int | Queued:
        if m.queue and self._busy():
            return await self._queue(m)
        self._ensure_idle()
        if m.reply_as is not None:
            # Refused before anything is written, the prose's own moves included.
            await self._check_reply_as(m.reply_as)
        cast, said = await self._write_turn(m.prose, m.person_id, m.reply_as)
        self._launch(cast, said)
        return said.user_turn_id

    async def _write_turn(
        self, prose: str, person_id: str, reply_as: str | None, queue_id: int | None = None
    ) -> tuple[Cast, PersonSaid]:
        """Append the person's prose (after the moves it tells of); ``queue_id``: it waited."""
        await self._moves_in(prose)
        cast = await self._cast(person_id)
        segments = parse_prose(prose)
        person = None if person_id == YOU_ID else person_id
        said = ev.UserTurn(self.chat_id, prose, segments, cast.present_ids, person)
        if queue_id is None:
            committed = await self.journal.write(add_user_turn, said)
        else:
            committed = await self.journal.write(start_queued, queue_id, said)
        return cast, PersonSaid(committed.ids[0], prose, segments, person_id, reply_as=reply_as)

    async def _queue(self, m: StartTurn) -> Queued:
        """Put the turn at the end of the chat's queue; ``busy`` when the queue is full."""
        if len(self.queued) >= MAX_QUEUE:
            raise ProtocolError(
                "busy", f"this chat already has {MAX_QUEUE} turns queued; wait for one to run"
            )
        if m.reply_as is not None:
            await self._check_reply_as(m.reply_as)
        if len(self.queued) >= MAX_QUEUE:  # another filled the queue while we checked
            raise ProtocolError("busy", f"this chat already has {MAX_QUEUE} turns queued")
        written = await self.journal.write(
            queue_turn, self.chat_id, m.person_id, m.prose, m.reply_as
        )
        self.queued.append(QueuedTurn(written.ids[0], m.person_id, m.prose, m.reply_as))
        if not self._busy_running():
            self._launch(None, None)  # the turn ahead settled while this one was written
        return Queued(self.chat_id, written.ids[0], len(self.queued))

    def _busy_running(self) -> bool:
        """Some work runs the chat's turns now (and will take the queue's next)."""
        return not self.idle.is_set()

    async def _drop_queued(self, person_id: str) -> None:
        """Drop the persona's own queued turns (nobody else's)."""
        mine = tuple(q.queue_id for q in self.queued if q.persona_id == person_id)
        if not mine:
            return
        self.queued = [q for q in self.queued if q.queue_id not in mine]
        await self.journal.write(drop_queued, self.chat_id, mine)

    async def _cast(self, person_id: str = YOU_ID) -> Cast:
        cast = await load_cast(self.svc.store, self.chat_id, person_id)
        settings = self.svc.settings
        rules = settings.judge == "rules"
        return evolve(
            cast,
            max_beats=settings.max_beats_per_turn,
            judge="rules" if rules else "model",
        )

    async def _check_reply_as(self, bot_id: str) -> None:
        if await self.svc.store.run(Store.get_bot, bot_id) is None:
            raise ProtocolError("not_found", f"there is no bot {bot_id!r} to reply as")
        present = (await load_cast(self.svc.store, self.chat_id)).present_ids
        if bot_id not in present:
            raise ProtocolError(
                "invalid", f"bot {bot_id!r} is not in this chat's scene: only one present replies"
            )

    async def _moves_in(self, prose: str) -> None:
        """Who the prose says leaves or walks in moves before anyone answers it."""
        cast = await self.svc.store.run(_cast_names, self.chat_id)
        if len(cast) < 2:
            return  # one character: nobody else to come or go
        names = {bot_id: name for bot_id, name, _ in cast}
        present = [bot_id for bot_id, _, here in cast if here]
        moves: list[ev.PresenceChanged] = []
        for move in presence_by_rules(prose, names):
            here = move.character_id in present
            if move.present == here or (here and len(present) == 1):
                continue  # already so, or the last one present, who stays
            if move.present:
                present.append(move.character_id)
            else:
                present.remove(move.character_id)
            moves.append(ev.PresenceChanged(self.chat_id, move.character_id, move.present))
        if moves:
            await self.journal.write(move_cast, moves)

    def _driver(self, cast: Cast, said: PersonSaid | ContinueAsked) -> TurnDriver:
        turn = TurnDriver(self.svc, self.journal, self.feed, cast, said.user_turn_id)
        self.turn = turn  # at once: a turn sent from now on finds the chat busy
        self.turns += 1
        return turn

    def _launch(self, cast: Cast | None, said: PersonSaid | ContinueAsked | None) -> None:
        """Run ``said``'s turn (if any), then the queued turns in order, as the actor's work.

        One work runs a chat's turns at a time: a later launch (a turn sent the
        moment the last one settled) takes the queue over from an earlier one
        still winding down.
        """
        first = self._driver(cast, said) if cast is not None and said is not None else None
        runner = object()
        self.runner = runner
        if self.idle.is_set():
            self.idle = trio.Event()
        idle = self.idle

        async def work() -> None:
            # The turn's later writes belong to no command, even if one launched it.
            current_command.set(None)
            turn: TurnDriver | None = first
            now: PersonSaid | ContinueAsked | None = said
            try:
                while True:
                    if turn is None or now is None:
                        taken = await self._next_queued()
                        if taken is None:
                            return
                        turn, now = taken
                    try:
                        await turn.run(now)
                    finally:
                        if self.turn is turn:
                            self.turn = None
                    turn = now = None
                    if self.runner is not runner or self.stopping:
                        return
            finally:
                if self.runner is runner:
                    idle.set()

        self.start_work(work)

    async def _next_queued(self) -> tuple[TurnDriver, PersonSaid] | None:
        """The queue's next turn, written now that it runs; None when the queue is empty."""
        self.starting = True  # between two turns the chat is busy all the same
        try:
            while self.queued and not self.stopping:
                head = self.queued.pop(0)
                try:
                    cast, said = await self._write_turn(
                        head.prose, head.persona_id, head.reply_as, head.queue_id
                    )
                except ProtocolError as exc:
                    # Its persona or its chat changed meanwhile: it cannot run.
                    log.info(
                        "chat %s: queued turn %d dropped: %s", self.chat_id, head.queue_id, exc
                    )
                    await self.journal.write(drop_queued, self.chat_id, (head.queue_id,))
                    continue
                return self._driver(cast, said), said
            return None
        finally:
            self.starting = False

    async def _regenerate(self, event_id: int, prose: str | None) -> int:
        """Run a beat's turn again on a branch forked after the person's line.

        Any visible beat, not only the latest: the old beat stays on the branch
        it was on, as an alternative (``select_alternative`` goes back to it).
        With ``prose``, the person's line itself is said anew (``edit_turn``).
        """
        self._ensure_idle()
        beat = await self.svc.store.run(_visible_beat, self.chat_id, event_id)
        if isinstance(beat, str):
            raise _refused(beat)
        if prose is not None and prose.strip():
            return await self._edit(beat.user_turn_id, prose)
        stored = await self.svc.store.run(Store.get_event, beat.user_turn_id)
        original = stored.event if stored is not None else None
        if not isinstance(original, ev.UserTurn | ev.UserTurnEdit):
            raise ProtocolError("invalid", f"event {event_id} answers no prose of the person")
        person = original.person_id or YOU_ID  # the turn stays its persona's
        await self.svc.store.run(Store.fork, self.chat_id, beat.user_turn_id, "regenerate")
        self.feed.resync()  # the old beat left the path: every watcher redraws
        cast = await self._cast(person)
        kept = Regenerate(None, beat.speaker_id)
        said = PersonSaid(
            beat.user_turn_id, original.prose, original.segments, person, regenerate=kept
        )
        self._launch(cast, said)
        return said.user_turn_id

    async def _continue(self) -> int:
        """Let the latest beat go on: a turn of its own that only extends it.

        Refused, with nothing written, while a turn is in flight (``busy``), when
        the chat has no beat (``not_found``), or when the person spoke after the
        latest beat or its speaker left the scene (``invalid``).
        """
        self._ensure_idle()
        found = await self.svc.store.run(_beat_to_continue, self.chat_id)
        if isinstance(found, str):
            raise _refused(found)
        cast = await self._cast(found.person_id)
        if cast.character(found.speaker_id) is None:
            raise ProtocolError(
                "invalid",
                f"{found.speaker_id!r} spoke the latest beat but is not in the scene now; "
                "bring them back to let them go on",
            )
        self._ensure_idle()  # a turn sent while the beat was read runs first
        self._launch(cast, found)
        return found.user_turn_id

    async def _edit(self, event_id: int, prose: str) -> int:
        """Fork just before the person's turn ``event_id`` and run it again with ``prose``."""
        self._ensure_idle()
        before = await self.svc.store.run(_before_user_turn, self.chat_id, event_id)
        if isinstance(before, str):
            raise ProtocolError(
                "not_found" if before.startswith("there is") else "invalid", before
            )
        segments = parse_prose(prose)  # checked before anything is written
        stored = await self.svc.store.run(Store.get_event, event_id)
        original = stored.event if stored is not None else None
        person_id = (
            original.person_id if isinstance(original, ev.UserTurn | ev.UserTurnEdit) else None
        )
        person = person_id or YOU_ID  # the edited turn stays its persona's
        await self.svc.store.run(Store.fork, self.chat_id, before, "edit")
        self.feed.resync()
        cast = await self._cast(person)
        committed = await self.journal.write(
            add_user_turn, ev.UserTurn(self.chat_id, prose, segments, cast.present_ids, person_id)
        )
        said = PersonSaid(committed.ids[0], prose, segments, person)
        self._launch(cast, said)
        return said.user_turn_id

    async def _select(self, event_id: int) -> None:
        """Show another alternative of a beat: the chat moves to the branch it is on."""
        self._ensure_idle()
        branch = await self.svc.store.run(_branch_of_alternative, self.chat_id, event_id)
        if isinstance(branch, str):
            raise ProtocolError(
                "not_found" if branch.startswith("there is") else "invalid", branch
            )
        if branch is None:
            return  # already the one shown
        await self.svc.store.run(Store.switch_branch, self.chat_id, branch)
        self.feed.resync()

    async def _switch(self, branch_id: int) -> None:
        self._ensure_idle()
        await self.svc.store.run(Store.switch_branch, self.chat_id, branch_id)
        self.feed.resync()

    async def _check_event(self, event_id: int) -> None:
        stored = await self.svc.store.run(Store.get_event, event_id)
        if stored is None or stored.chat_id != self.chat_id:
            raise ProtocolError("not_found", f"event {event_id} is not in this chat")

    async def _preview(self, event_id: int) -> RewindPreviewReply:
        await self._check_event(event_id)
        preview = await self.svc.store.run(Store.rewind_preview, self.chat_id, event_id)
        return RewindPreviewReply(
            self.chat_id,
            event_id,
            preview.total,
            dict(preview.by_kind),
            summary=rewind_summary(preview.by_kind),
        )

    async def _rewind(self, event_id: int) -> None:
        self._ensure_idle()
        await self._check_event(event_id)
        await self.svc.store.run(Store.rewind, self.chat_id, event_id)
        self.feed.resync()

    async def _plan(self, plan: PlanWorldEvent) -> None:
        present = (await load_cast(self.svc.store, self.chat_id)).present_ids
        await self.journal.write(
            plan_world_event,
            ev.WorldEventCreated(
                self.chat_id, plan.title, plan.description, plan.artifacts, present
            ),
        )


def _refused(why: str) -> ProtocolError:
    """``not_found`` for what does not exist in the chat, ``invalid`` for the wrong thing."""
    return ProtocolError("not_found" if why.startswith("there is") else "invalid", why)


def _visible_beat(s: Store, chat_id: str, event_id: int) -> Turn | str:
    """The visible beat ``event_id`` of the chat, or why it is none (a sentence)."""
    stored = s.get_event(event_id)
    if stored is None or stored.chat_id != chat_id:
        return f"there is no event {event_id} in chat {chat_id}"
    for turn in s.timeline(chat_id):
        if turn.event_id == event_id:
            if turn.kind != "assistant":
                return f"event {event_id} is the person's turn, not a beat"
            return turn
    return f"event {event_id} is not a beat shown on the chat's current branch"


def _beat_to_continue(s: Store, chat_id: str) -> ContinueAsked | str:
    """The chat's latest beat as a ``continue`` takes it, or why there is none (a sentence)."""
    latest = s.latest_turn(chat_id)
    if latest is None or s.latest_assistant_turn(chat_id) is None:
        return f"there is no beat to continue in chat {chat_id}"
    if latest.kind != "assistant":
        return (
            f"the latest turn of chat {chat_id} is the person's ({latest.event_id}): only "
            "the latest beat can go on"
        )
    stored = s.get_event(latest.event_id)
    beat_id = latest.event_id
    if stored is not None and isinstance(stored.event, ev.AssistantTurn):
        beat_id = stored.event.started_id or latest.event_id
    said = s.get_event(latest.user_turn_id)
    prose, person = "", YOU_ID
    if said is not None and isinstance(said.event, ev.UserTurn | ev.UserTurnEdit):
        prose, person = said.event.prose, said.event.person_id or YOU_ID
    return ContinueAsked(
        latest.event_id,
        beat_id,
        latest.speaker_id,
        latest.user_turn_id,
        latest.text,
        prose,
        person,
    )


def _before_user_turn(s: Store, chat_id: str, event_id: int) -> int | str:
    """The chat's last event before its visible user turn ``event_id`` (the fork point)."""
    stored = s.get_event(event_id)
    if stored is None or stored.chat_id != chat_id:
        return f"there is no event {event_id} in chat {chat_id}"
    if not any(t.event_id == event_id and t.kind == "user" for t in s.timeline(chat_id)):
        return f"event {event_id} is not a turn of the person shown on the chat's current branch"
    before = s.previous_on_branch(chat_id, event_id)
    assert before is not None  # chat_created comes before every turn
    return before


def _branch_of_alternative(s: Store, chat_id: str, event_id: int) -> int | str | None:
    """The branch to switch to so that the beat ``event_id`` shows; None when it shows."""
    stored = s.get_event(event_id)
    if stored is None or stored.chat_id != chat_id:
        return f"there is no event {event_id} in chat {chat_id}"
    if not isinstance(stored.event, ev.AssistantTurn):
        return f"event {event_id} is not a beat: only a beat has alternatives"
    if any(t.event_id == event_id for t in s.timeline(chat_id)):
        return None
    if s.on_current_branch(chat_id, event_id):
        return f"beat {event_id} was replaced before branches existed; it cannot be shown again"
    return s.branch_of(event_id)


def _cast_names(s: Store, chat_id: str) -> list[tuple[str, str, bool]]:
    """The chat's cast in order: each bot's id, name, and whether it is in the scene."""
    cast = []
    for bot_id, present in s.cast_of(chat_id):
        bot = s.get_bot(bot_id)
        if bot is not None:
            cast.append((bot_id, bot.name, present))
    return cast


async def wait_settled(ref: ActorRef | RegistryRef) -> None:
    """Wait until the chat behind ``ref`` has no turn in flight."""
    done = await ref.ask(WaitSettled())
    if isinstance(done, trio.Event):
        await done.wait()


__all__ = ["ChatActor", "trio", "wait_settled"]
