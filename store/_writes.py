"""The named writes of a chat: each appends its events and builds their chat messages.

Every write a turn (or the significance worker, or a command) makes is one
of these functions of the :class:`Store`, run on the store's thread in one
transaction: the events, their projection changes and the messages they
produce, stamped with the chat's next ``seq``, commit together. The actors
call them through their chat's journal (``actors/_journal.py``), which
publishes what each committed; no caller builds messages of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

import attrs

from protocol import (
    MOVED_TO,
    YOU_ID,
    AuthorNoteChanged,
    BeatComplete,
    BeatStarted,
    ChatLorebooks,
    ChatMessage,
    ChatNote,
    Memory,
    MemoryNote,
    Presence,
    SceneClosed,
    TurnSettled,
    UserTurn,
    WorldEvent,
)
from protocol import events as ev

from ._records import AppendResult
from ._rendering import beat_complete, edge_update
from ._store import Store

AutoPinPlan = Callable[[Memory, Sequence[Memory], int], tuple[bool, tuple[int, ...]]]
"""``(scored memory, the bot's auto-pins, cap) -> (pin it?, auto-pins to unpin)``."""

NOTHING = AppendResult(())

E = TypeVar("E")


def add_user_turn(s: Store, said: ev.UserTurn | ev.UserTurnEdit) -> AppendResult:
    """The person's prose (or its edit, which supersedes the turn it edits)."""
    return s.append(
        said,
        render=lambda ids: [
            UserTurn(
                said.chat_id,
                ids[0],
                said.prose,
                said.segments,
                speaker_id=said.person_id or YOU_ID,
            )
        ],
    )


def plan_world_event(s: Store, planned: ev.WorldEventCreated) -> AppendResult:
    """A world event planned by the person."""
    return s.append(
        planned,
        render=lambda ids: [WorldEvent(planned.chat_id, ids[0], planned.title, "planned")],
    )


def attach_lorebooks(s: Store, change: ev.LorebookAttached | ev.LorebookDetached) -> AppendResult:
    """A lorebook attached to a chat or taken off it, told as the chat's books now."""
    return s.append(
        change,
        render=lambda _: [ChatLorebooks(change.chat_id, tuple(s.chat_lorebooks(change.chat_id)))],
    )


def set_author_note(s: Store, note: ev.AuthorNoteSet) -> AppendResult:
    """The chat's author's note changed (an empty text removes it)."""
    return s.append(
        note, render=lambda _: [AuthorNoteChanged(note.chat_id, note.text, note.depth)]
    )


def move_cast(s: Store, moves: Sequence[ev.Event]) -> AppendResult:
    """Cast, presence and muting changes: a ``presence`` message for each move in or out of
    the scene, then one ``chat`` with the chat as it is after them all.

    A bot added to the cast enters the scene; one taken out of it leaves.
    """
    told: list[ChatMessage] = []
    for move in moves:
        if isinstance(move, ev.PresenceChanged):
            told.append(Presence(move.chat_id, move.bot_id, move.present))
        elif isinstance(move, ev.CastAdded | ev.CastRemoved):
            told.append(Presence(move.chat_id, move.bot_id, isinstance(move, ev.CastAdded)))
        elif not isinstance(move, ev.MuteChanged):
            raise ValueError(f"expected cast, presence and muting changes only, got {move!r}")
    chat_ids = {ev.chat_of(move) for move in moves}
    chat_id = chat_ids.pop() if len(chat_ids) == 1 else None
    if chat_id is None:
        raise ValueError(f"cast changes are of one chat at a time, not {moves!r}")

    def render(_ids: tuple[int, ...]) -> list[ChatMessage]:
        chat = s.get_chat(chat_id)
        assert chat is not None  # the moves were checked against it
        return [*told, ChatNote(chat_id, chat)]

    return s.append(*moves, render=render)


def open_scene(s: Store, opening: Sequence[ev.Event]) -> AppendResult:
    """Open a scene (one ``scene_opened``; no message: the next ``chat_state`` shows it)."""
    return s.append(*_only(opening, ev.SceneOpened))


def begin_beat(s: Store, started: ev.AssistantTurnStarted) -> AppendResult:
    """A beat starts streaming; its id is the beat's id."""
    return s.append(
        started,
        render=lambda ids: [
            BeatStarted(
                started.chat_id,
                ids[0],
                started.user_turn_id,
                started.speaker_id,
                started.interjection_of is not None,
            )
        ],
    )


def end_beat(s: Store, end: ev.AssistantTurn) -> AppendResult:
    """A streamed beat's end and its ``beat_complete``."""
    return s.append(end, render=lambda ids: [beat_complete(end, ids[0])])


def begin_continuation(s: Store, started: BeatStarted) -> AppendResult:
    """A beat goes on (``continue``): its ``beat_started``, with ``continues`` (no event:
    the continuation is one ``beat_continued`` event, written when it ends)."""
    return AppendResult((), s.record([started]))


def continue_beat(s: Store, more: ev.BeatContinued, beat_id: int) -> AppendResult:
    """A beat's continuation ended: ``beat_continued`` and a ``beat_complete`` with the
    beat's whole text (``event_id`` the beat's own; ``beat_id`` its tokens')."""

    def render(_ids: tuple[int, ...]) -> list[ChatMessage]:
        row = s.turn_of(more.chat_id, more.event_id)
        assert row is not None  # the projection checked it shows
        return [
            BeatComplete(
                more.chat_id,
                beat_id,
                more.event_id,
                row.speaker_id,
                row.text,
                row.truncated,
                row.interjection_of,
                more.error,
            )
        ]

    return s.append(more, render=render)


def write_memories(s: Store, memories: Sequence[ev.Event]) -> AppendResult:
    """New memories (``memory_written`` events), each told as a ``memory_note``."""
    written = _only(memories, ev.MemoryWritten)
    return s.append(*written, render=lambda ids: _notes(s, ids))


def apply_edges(s: Store, updates: Sequence[ev.Event]) -> AppendResult:
    """Edge updates, each told with the edge's values after it."""
    edges = _only(updates, ev.EdgeUpdate)
    return s.append(*edges, render=lambda _ids: _edge_messages(s, edges))


def move_world_events(s: Store, moves: Sequence[ev.Event]) -> AppendResult:
    """World events' moves, each followed by what completing it promotes into state.

    Each move is told as a ``world_event`` message with the event's new
    status, then each edge the moves changed as an ``edge_update``.
    """
    told: list[ChatMessage] = []
    for event in moves:
        if not isinstance(event, ev.WorldEventMove):
            continue  # what a completion promotes
        status = MOVED_TO[type(event)]
        row = s.get_world_event(event.world_event_id)
        if row is None or row.chat_id != event.chat_id:
            raise ValueError(f"world event {event.world_event_id} is not in chat {event.chat_id}")
        told.append(WorldEvent(event.chat_id, event.world_event_id, row.title, status))
    edges = [e for e in moves if isinstance(e, ev.EdgeUpdate)]
    return s.append(*moves, render=lambda _ids: [*told, *_edge_messages(s, edges)])


def close_scene(s: Store, closing: Sequence[ev.Event]) -> AppendResult:
    """Close a scene: ``scene_closed``, the witnesses' summaries, what they learnt, the next scene.

    ``closing`` starts with the ``scene_closed`` event. Told as one
    ``scene_closed`` message with every summary, then an ``edge_update``
    per edge the scene changed.
    """
    closed = closing[0]
    if not isinstance(closed, ev.SceneClosed):
        raise ValueError("closing a scene starts with its scene_closed event")
    summaries = {e.bot_id: e.text for e in closing if isinstance(e, ev.SceneSummary)}
    edges = [e for e in closing if isinstance(e, ev.EdgeUpdate)]
    return s.append(
        *closing,
        render=lambda _ids: [
            SceneClosed(closed.chat_id, closed.scene_id, summaries),
            *_edge_messages(s, edges),
        ],
    )


def score_memories(
    s: Store,
    chat_id: str,
    memory_ids: Sequence[int],
    score: int,
    plan: AutoPinPlan,
    cap: int,
) -> AppendResult:
    """Score a beat's memories; a 3 auto-pins under the ``cap`` per bot and chat, as ``plan`` says.

    Memories rewound meanwhile are skipped. Every memory touched (scored,
    or unpinned to make room, always in the same chat) is told as a
    ``memory_note``.
    """
    events: list[ev.Event] = []
    touched: list[int] = []
    for memory_id in memory_ids:
        memory = s.get_memory(memory_id)
        if memory is None:
            continue
        events.append(ev.MemoryScored(chat_id, memory_id, score))
        touched.append(memory_id)
        if score == 3 and not memory.pinned:
            scored = attrs.evolve(memory, significance=score)
            pin, evict = plan(scored, s.auto_pinned(memory.bot_id, chat_id=memory.chat_id), cap)
            if pin:
                events.append(ev.MemoryPinned(chat_id, memory_id, "auto"))
            for old in evict:
                old_memory = s.get_memory(old)
                events.append(
                    ev.MemoryUnpinned(old_memory.chat_id if old_memory else chat_id, old, "auto")
                )
                touched.append(old)
    if not events:
        return NOTHING
    return s.append(*events, render=lambda _ids: _notes(s, dict.fromkeys(touched)))


def mark_memory(s: Store, mark: ev.MemoryPinned | ev.MemoryUnpinned) -> AppendResult:
    """Pin or unpin a memory; told as its ``memory_note``."""
    return s.append(mark, render=lambda _ids: _notes(s, [mark.memory_id]))


def settle_turn(s: Store, chat_id: str, user_turn_id: int) -> AppendResult:
    """The turn answering ``user_turn_id`` is over: ``turn_settled`` (no event)."""
    return AppendResult((), s.record([TurnSettled(chat_id, user_turn_id)]))


def _only(events: Sequence[ev.Event], kind: type[E]) -> list[E]:
    """The events, every one a ``kind``; any other is the caller's mistake."""
    of_kind: list[E] = [e for e in events if isinstance(e, kind)]
    if len(of_kind) != len(events) or not of_kind:
        raise ValueError(f"expected {kind.__name__} events only, got {events!r}")
    return of_kind


def _notes(s: Store, memory_ids: Iterable[int]) -> list[ChatMessage]:
    notes: list[ChatMessage] = []
    for memory_id in memory_ids:
        memory = s.get_memory(memory_id)
        if memory is not None:
            notes.append(MemoryNote(memory.chat_id, memory))
    return notes


def _edge_messages(s: Store, updates: Sequence[ev.EdgeUpdate]) -> list[ChatMessage]:
    messages: list[ChatMessage] = []
    for update in updates:
        if update.chat_id is None:
            raise ValueError("an edge update told to a chat names its chat")
        edge = s.get_edge(update.source_id, update.target_id, chat_id=update.chat_id)
        messages.append(edge_update(update.chat_id, update, edge))
    return messages
