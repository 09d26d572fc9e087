"""The turn driver: runs story's turn machine (``story.TurnMachine``) inside the chat actor.

The machine decides; the driver only does what it is told and reports back.
Each command runs as a task of the turn's nursery, so classifier calls the
machine asks for together run together (bounded by the pool); what a task
learns goes back into the machine as an input, and the commands that come
out run in turn. Writes go through the chat's journal, beats through
``stream_beat``, classifier calls through the pool, significance to its
worker. The machine's table is in docs/story.md ("The turn machine").

A write that does not fit on the disk (or a bug) halts the turn, which then
settles; a cancel reaches the machine at once, and the beat in flight with it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence

import attrs
import outcome
import trio

import story
from llm import ClassifierRequest
from protocol import BeatStarted, Error, TurnSettled
from protocol import events as ev
from store import (
    AppendResult,
    StorageFull,
    Store,
    apply_edges,
    close_scene,
    move_world_events,
    open_scene,
    settle_turn,
    write_memories,
)

from ._beat import TurnState, stream_beat, stream_continuation
from ._feed import ChatFeed
from ._journal import Journal
from ._messages import ScoreMemories
from ._prompting import narrative_request
from ._services import Services

log = logging.getLogger("troupe.actors.driver")

WRITES: dict[type[ev.Event], Callable[[Store, Sequence[ev.Event]], AppendResult]] = {
    ev.SceneOpened: open_scene,
    ev.MemoryWritten: write_memories,
    ev.EdgeUpdate: apply_edges,
    ev.WorldEventStarted: move_world_events,
    ev.WorldEventCompleted: move_world_events,
    ev.WorldEventCancelled: move_world_events,
    ev.SceneClosed: close_scene,
}
"""The store's named write for each of the turn's appends, by the kind of its first event."""


class TurnDriver:
    """One turn of one chat: feeds the machine and runs what it asks, until it settles."""

    def __init__(
        self, svc: Services, journal: Journal, feed: ChatFeed, cast: story.Cast, user_turn_id: int
    ) -> None:
        self.svc = svc
        self.journal = journal
        self.feed = feed
        self.cast = cast
        self.user_turn_id = user_turn_id
        self.machine = story.TurnMachine(cast)
        self.done = trio.Event()
        # What a cancel needs to reach the beat in flight, or the next one to start.
        self.control = TurnState(user_turn_id)
        self._nursery: trio.Nursery | None = None
        self._early: str | None = None
        self._halted = False
        self._crash: BaseException | None = None

    async def run(self, said: story.PersonSaid | story.ContinueAsked) -> None:
        """Run the turn to its end; always settles (``turn_settled``), even when cancelled."""
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                self._take(said)
                if self._early is not None:
                    self._take(story.CancelRequested(self._early))
        finally:
            self._nursery = None
            if not self.done.is_set():  # stopped from outside (shutdown): settle all the same
                with trio.CancelScope(shield=True):
                    await self._settle(story.Settle(self.user_turn_id))
        if self._crash is not None:
            raise self._crash

    def cancel(self, reason: str) -> None:
        """Stop the beat in flight and any beat still to come."""
        if self._nursery is None:
            self._early = self._early or reason  # before the turn started: told once it has
        elif not self.machine.settled:
            self._take(story.CancelRequested(reason))

    def _take(self, event: story.Input) -> None:
        for command in self.machine.send(event):
            self._do(command)

    def _do(self, command: story.Command) -> None:
        if isinstance(command, story.StopBeat):
            self.control.cancel(command.reason)
        elif isinstance(command, story.Read):
            self._start(self._read(command))
        elif isinstance(command, story.Append):
            self._start(self._append(command.events))
        elif isinstance(command, story.StreamBeat):
            self._start(self._stream(command))
        elif isinstance(command, story.ContinueBeat):
            self._start(self._continue(command))
        elif isinstance(command, story.Classify):
            self._start(self._classify(command))
        elif isinstance(command, story.ScoreSignificance):
            job = ScoreMemories(
                self.cast.chat_id, command.memory_ids, command.text, command.context
            )
            self._start(self.svc.significance.tell(job))
        elif isinstance(command, story.Settle):
            self._start(self._finish(command))

    def _start(self, work: Awaitable[story.Input | None]) -> None:
        assert self._nursery is not None

        async def run() -> None:
            try:
                answer = await work
            except StorageFull as exc:
                # Nothing more of this turn fits; a beat cut short by it already ended.
                self.feed.error(Error("storage_full", str(exc), self.cast.chat_id))
                answer = story.Halted("storage_full")
            except Exception as exc:
                log.exception("chat %s: the turn failed", self.cast.chat_id)
                self._crash = self._crash or exc
                answer = story.Halted("internal")
            if isinstance(answer, story.Halted):
                self._halted = True
            if answer is not None:
                self._take(answer)

        self._nursery.start_soon(run)

    async def _read(self, read: story.Read) -> story.Loaded:
        chat_id = self.cast.chat_id

        def load(s: Store) -> story.Loaded:
            events = s.world_events(chat_id, read.world_events) if read.world_events else []
            dialogue = tuple(s.recent_dialogue(chat_id, read.dialogue)) if read.dialogue else ()
            # Who witnessed each line, in one read: a turn's reads grow with its dialogue.
            seen = s.witnesses_of(chat_id, [t.event_id for t in dialogue])
            return story.Loaded(
                scene=s.active_scene(chat_id) if read.scene else None,
                edges=tuple(s.edges_among(read.edges_among, chat_id=chat_id)),
                dialogue=dialogue,
                world_events=tuple(
                    story.OpenWorldEvent(e.id, e.status, e.title, e.description, e.artifacts)
                    for e in events
                ),
                witnessed=tuple(
                    (t.event_id, seen[t.event_id]) for t in dialogue if t.event_id in seen
                ),
            )

        return await self.svc.store.run(load)

    async def _append(self, events: tuple[ev.Event, ...]) -> story.Appended:
        write = WRITES.get(type(events[0])) if events else None
        if write is None:
            raise TypeError(f"the turn has no named write for {events!r}")
        return story.Appended((await self.journal.write(write, events)).ids)

    async def _stream(self, command: story.StreamBeat) -> story.BeatEnded:
        if command.cancelled is not None:
            self.control.cancel(command.cancelled)
        request = await narrative_request(self.svc, self.cast, command.request)
        started = ev.AssistantTurnStarted(
            self.cast.chat_id,
            command.request.speaker_id,
            command.user_turn_id,
            command.interjection_of,
            self.cast.present_ids,
        )
        result = await stream_beat(
            self.svc,
            self.journal,
            self.feed,
            self.control,
            started,
            request,
            supersedes=command.supersedes,
        )
        return story.BeatEnded(result.event_id, result.text, result.truncated, result.error)

    async def _continue(self, command: story.ContinueBeat) -> story.BeatEnded:
        if command.cancelled is not None:
            self.control.cancel(command.cancelled)
        request = await narrative_request(self.svc, self.cast, command.request)
        # The speaker goes on from its own words: the prompt ends with them.
        request = attrs.evolve(request, continues=command.text)
        started = BeatStarted(
            self.cast.chat_id,
            command.beat_id,
            command.user_turn_id,
            command.request.speaker_id,
            False,
            continues=command.event_id,
            offset=len(command.text),
        )
        result = await stream_continuation(
            self.svc,
            self.journal,
            self.feed,
            self.control,
            started,
            command.event_id,
            command.text,
            request,
        )
        return story.BeatEnded(command.event_id, result.text, result.truncated, result.error)

    async def _classify(self, ask: story.Classify) -> story.Classified:
        messages = tuple(ask.messages)
        request = ClassifierRequest(ask.name, messages, ask.schema, critical=ask.critical)
        value = await self.svc.pool.classify(request, ask.validate, ask.default)
        return story.Classified(ask.key, value)

    async def _finish(self, settle: story.Settle) -> None:
        await self._settle(settle)
        if self._halted and self._nursery is not None:
            self._nursery.cancel_scope.cancel()  # a halted turn's leftovers are not waited for

    async def _settle(self, settle: story.Settle) -> None:
        chat_id = self.cast.chat_id
        written: list[outcome.Outcome[AppendResult]] = []
        arrived = trio.Event()

        def then(result: outcome.Outcome[AppendResult]) -> None:
            # Done before turn_settled is published: whoever learns of it may send the
            # next turn at once, and must not be told the chat is busy.
            self.done.set()
            written.append(result)
            arrived.set()

        try:
            self.journal.submit(settle_turn, then, chat_id, settle.user_turn_id)
            await arrived.wait()
            if isinstance(written[0], outcome.Error):
                if not isinstance(written[0].error, StorageFull):
                    written[0].unwrap()
                self.journal.publish([TurnSettled(chat_id, settle.user_turn_id)])  # seq 0
        finally:
            self.done.set()
            if settle.resync:
                self.feed.resync()  # the superseded turn left the timeline: every watcher redraws
