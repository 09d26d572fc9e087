"""The chat actor: one per chat; it serializes the chat's turns.

Commands arrive in its mailbox one at a time. A turn runs as the actor's long
work, so the mailbox stays free for ``cancel`` while a beat streams; a second
turn while one is in flight is refused with ``busy`` and writes nothing.
"""

from __future__ import annotations

import logging

import trio
from attrs import evolve

from protocol import ProtocolError, RewindPreviewReply
from protocol import events as ev
from runtime import Actor, ActorRef, RegistryRef
from store import Store, add_user_turn, move_cast, plan_world_event
from story import Cast, PersonSaid, Regenerate, parse_prose, presence_by_rules

from ._cast import load_cast
from ._driver import TurnDriver
from ._feed import ChatFeed
from ._journal import Journal
from ._messages import (
    CancelTurn,
    MoveCast,
    PlanWorldEvent,
    PreviewRewind,
    RegenerateTurn,
    RewindChat,
    StartTurn,
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

    async def on_start(self) -> None:
        # The feed lives with the active chat: made (or found) on each activation,
        # dropped by the engine once the actor passivated and nobody watches.
        self.feed = await self.svc.feeds.open(self.chat_id)
        # A restarted actor starts with no turn in flight; a beat its predecessor left
        # open (a crash between started and ended) is closed as interrupted.
        self.turn = None

    async def on_stop(self) -> None:
        if self.turn is not None:
            self.turn.cancel("shutdown")

    async def handle(self, message: object) -> object:
        with refusals():
            return await self._command(message)

    async def _command(self, message: object) -> object:
        if isinstance(message, StartTurn):
            return await self._start_turn(message.prose, message.reply_as)
        if isinstance(message, CancelTurn):
            if self.turn is not None:
                self.turn.cancel(message.reason)
            return None
        if isinstance(message, RegenerateTurn):
            return await self._regenerate(message.event_id, message.prose)
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
            return self.turn.done if self.turn is not None else None
        raise TypeError(f"a chat does not handle {type(message).__name__}")

    def statistics(self) -> dict[str, int | bool]:
        """Turns run and whether one is in flight."""
        return {"turns": self.turns, "in_flight": self.turn is not None}

    # --- commands ---

    def _ensure_idle(self) -> None:
        if self.turn is not None and not self.turn.done.is_set():
            raise ProtocolError("busy", "a turn of this chat is still in flight; wait or cancel")

    async def _start_turn(self, prose: str, reply_as: str | None = None) -> int:
        self._ensure_idle()
        if reply_as is not None:
            # Refused before anything is written, the prose's own moves included.
            await self._check_reply_as(reply_as)
        await self._moves_in(prose)
        cast = await self._cast()
        segments = parse_prose(prose)
        committed = await self.journal.write(
            add_user_turn, ev.UserTurn(self.chat_id, prose, segments, cast.present_ids)
        )
        said = PersonSaid(committed.ids[0], prose, segments, reply_as=reply_as)
        self._launch(cast, said)
        return said.user_turn_id

    async def _cast(self) -> Cast:
        cast = await load_cast(self.svc.store, self.chat_id)
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

    def _launch(self, cast: Cast, said: PersonSaid) -> None:
        turn = TurnDriver(self.svc, self.journal, self.feed, cast, said.user_turn_id)
        self.turn = turn
        self.turns += 1

        async def work() -> None:
            try:
                await turn.run(said)
            finally:
                if self.turn is turn:
                    self.turn = None

        self.start_work(work)

    async def _regenerate(self, event_id: int, prose: str | None) -> int:
        self._ensure_idle()
        latest = await self.svc.store.run(Store.latest_assistant_turn, self.chat_id)
        if latest is None or latest.event_id != event_id:
            await self._check_event(event_id)
            raise ProtocolError(
                "invalid", "only the chat's latest assistant turn can be regenerated"
            )
        cast = await self._cast()
        if prose is not None and prose.strip():
            segments = parse_prose(prose)
            committed = await self.journal.write(
                add_user_turn,
                ev.UserTurnEdit(
                    self.chat_id, latest.user_turn_id, prose, segments, cast.present_ids
                ),
            )
            # Edited prose may address someone else: the speaker is chosen afresh.
            said = PersonSaid(committed.ids[0], prose, segments, regenerate=Regenerate(event_id))
        else:
            stored = await self.svc.store.run(Store.get_event, latest.user_turn_id)
            original = stored.event if stored is not None else None
            if not isinstance(original, ev.UserTurn | ev.UserTurnEdit):
                raise ProtocolError("invalid", f"event {event_id} answers no prose of the person")
            kept = Regenerate(event_id, latest.speaker_id)
            said = PersonSaid(
                latest.user_turn_id, original.prose, original.segments, regenerate=kept
            )
        self._launch(cast, said)
        return said.user_turn_id

    async def _check_event(self, event_id: int) -> None:
        stored = await self.svc.store.run(Store.get_event, event_id)
        if stored is None or stored.chat_id != self.chat_id:
            raise ProtocolError("not_found", f"event {event_id} is not in this chat")

    async def _preview(self, event_id: int) -> RewindPreviewReply:
        await self._check_event(event_id)
        preview = await self.svc.store.run(Store.rewind_preview, self.chat_id, event_id)
        return RewindPreviewReply(self.chat_id, event_id, preview.total, dict(preview.by_kind))

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
