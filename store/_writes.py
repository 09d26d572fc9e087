"""The named writes of a chat: each appends its events and builds their chat messages.

Every write a turn (or the significance worker, or a command) makes is one
of these functions of the :class:`Store`, run on the store's thread in one
transaction: the events, their projection changes and the messages they
produce, stamped with the chat's next ``seq``, commit together. The actors
call them through their chat's journal (``actors/_journal.py``), which
publishes what each committed; no caller builds messages of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

import attrs

from protocol import (
    Artifacts,
    BeatStarted,
    ChatMessage,
    Memory,
    MemoryNote,
    SceneClosed,
    TurnSettled,
    UserTurn,
    WorldEvent,
    WorldEventStatus,
)
from protocol import events as ev

from ._records import AppendResult
from ._rendering import beat_complete, edge_update
from ._store import Store

AutoPinPlan = Callable[[Memory, Sequence[Memory], int], tuple[bool, tuple[int, ...]]]
"""``(scored memory, the bot's auto-pins, cap) -> (pin it?, auto-pins to unpin)``."""

NOTHING = AppendResult(())


def add_user_turn(s: Store, said: ev.UserTurn | ev.UserTurnEdit) -> AppendResult:
    """The person's prose (or its edit, which supersedes the turn it edits)."""
    return s.append(
        said, render=lambda ids: [UserTurn(said.chat_id, ids[0], said.prose, said.segments)]
    )


def plan_world_event(s: Store, planned: ev.WorldEventCreated) -> AppendResult:
    """A world event planned by the person."""
    return s.append(
        planned,
        render=lambda ids: [WorldEvent(planned.chat_id, ids[0], planned.title, "planned")],
    )


def open_scene_if_none(s: Store, chat_id: str, location: str | None) -> AppendResult:
    """Open a scene at ``location`` when the chat has none open (it tells no message)."""
    if s.active_scene(chat_id) is not None:
        return NOTHING
    return s.append(ev.SceneOpened(chat_id, location))


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


def write_memories(s: Store, memories: Sequence[ev.MemoryWritten]) -> AppendResult:
    """New memories, each told as a ``memory_note``."""
    if not memories:
        return NOTHING
    return s.append(*memories, render=lambda ids: _notes(s, ids))


def apply_edges(s: Store, updates: Sequence[ev.EdgeUpdate]) -> AppendResult:
    """Edge updates of one chat, each told with the edge's values after it."""
    if not updates:
        return NOTHING
    return s.append(*updates, render=lambda _ids: _edge_messages(s, updates))


def move_world_events(
    s: Store, chat_id: str, moves: Sequence[tuple[int, WorldEventStatus]]
) -> AppendResult:
    """Move open world events to a new status; a completed one's artifacts go into state.

    Each move is told as a ``world_event`` message, and each edge its
    completion changes as an ``edge_update``.
    """
    if not moves:
        return NOTHING
    events: list[ev.Event] = []
    told: list[WorldEvent] = []
    for world_event_id, status in moves:
        row = s.get_world_event(world_event_id)
        if row is None or row.chat_id != chat_id:
            raise ValueError(f"world event {world_event_id} is not in chat {chat_id}")
        if status == "active":
            events.append(ev.WorldEventStarted(chat_id, world_event_id))
        elif status == "cancelled":
            events.append(ev.WorldEventCancelled(chat_id, world_event_id))
        elif status == "completed":
            events.append(ev.WorldEventCompleted(chat_id, world_event_id))
            events.extend(_promotions(chat_id, world_event_id, row.artifacts))
        else:
            raise ValueError(f"a world event cannot move to {status!r}")
        told.append(WorldEvent(chat_id, world_event_id, row.title, status))
    edges = [e for e in events if isinstance(e, ev.EdgeUpdate)]
    return s.append(*events, render=lambda _ids: [*told, *_edge_messages(s, edges)])


def close_scene(
    s: Store,
    closed: ev.SceneClosed,
    summaries: Mapping[str, str],
    learned: Sequence[ev.EdgeUpdate],
) -> AppendResult:
    """Close a scene with each witness's summary and what each learned; open the next one.

    ``summaries`` maps each witness (bot id) to its summary; ``learned`` are
    the edge updates (knowledge, edge summaries) the scene left each witness,
    which must be the source of every one of them. A new scene
    opens at ``closed.next_location`` when the scene closed by moving there.
    """
    chat_id = closed.chat_id
    events: list[ev.Event] = [closed]
    for bot_id, text in summaries.items():
        events.append(ev.SceneSummary(chat_id, closed.scene_id, bot_id, text))
        events.extend(u for u in learned if u.source_id == bot_id)
    if any(u.source_id not in summaries for u in learned):
        raise ValueError("every edge update of a closed scene is a witness's")
    edges = [e for e in events if isinstance(e, ev.EdgeUpdate)]
    if closed.next_location:
        events.append(ev.SceneOpened(chat_id, closed.next_location))
    return s.append(
        *events,
        render=lambda _ids: [
            SceneClosed(chat_id, closed.scene_id, dict(summaries)),
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
    """Score a beat's memories; a 3 auto-pins under the per-bot ``cap``, as ``plan`` says.

    Memories rewound meanwhile are skipped. Every memory touched (scored,
    or unpinned to make room, maybe in another chat) is told as a
    ``memory_note`` on its own chat.
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
            pin, evict = plan(scored, s.auto_pinned(memory.bot_id), cap)
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
        edge = s.get_edge(update.source_id, update.target_id)
        messages.append(edge_update(update.chat_id, update, edge))
    return messages


def _promotions(chat_id: str, world_event_id: int, artifacts: Artifacts) -> list[ev.Event]:
    """The events that put a completed world event's artifacts into state."""
    out: list[ev.Event] = []
    facts: dict[tuple[str, str], list[str]] = {}
    for fact in artifacts.knowledge_facts:
        facts.setdefault((fact.source_id, fact.target_id), []).append(fact.fact)
    changes = {(c.source_id, c.target_id): c for c in artifacts.relationship_changes}
    for pair in dict.fromkeys([*facts, *changes]):
        change = changes.get(pair)
        out.append(
            ev.EdgeUpdate(
                pair[0],
                pair[1],
                chat_id=chat_id,
                affinity_delta=change.affinity_delta if change else 0,
                trust_delta=change.trust_delta if change else 0,
                knowledge_facts=tuple(facts.get(pair, ())),
            )
        )
    for obj in artifacts.acquired_objects:
        out.append(ev.ObjectAcquired(chat_id, obj.holder_id, obj.name, world_event_id))
    return out
