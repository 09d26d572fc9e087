"""The rules of the story's numbers and world events, in one place.

Affinity and trust: their bounds, the neutral value of a pair with no
history, and how any number (a classifier's float, a sum of deltas) becomes
a stored one. World events: the moves a status allows, the event each move
appends, and what a completed event's artifacts change.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from . import events as ev
from ._limits import (
    EDGE_DEFAULT,
    EDGE_MAX,
    EDGE_MIN,
    MAX_AUTHOR_NOTE,
    MAX_EDGE_DELTA,
    MAX_FACTS,
    MAX_NOTE_DEPTH,
)
from ._shapes import Artifacts, Edge, WorldEventStatus


def round_half_away(value: float) -> int | None:
    """``value`` rounded to the nearest integer, halves away from zero; ``None`` if not finite.

    Python's ``round`` rounds halves to even (``round(2.5) == 2``); a model's
    ``2.5`` reads as 3, and ``-2.5`` as -3.
    """
    if not math.isfinite(value):
        return None
    return math.floor(abs(value) + 0.5) * (1 if value >= 0 else -1)


def clamp_edge(value: float) -> int:
    """An affinity or trust value as stored: rounded (halves away from zero), within 0..100.

    Infinities clamp to the nearest bound; NaN is the neutral 50. An integer
    of any size clamps exactly.
    """
    if isinstance(value, int):
        return max(EDGE_MIN, min(EDGE_MAX, value))
    if math.isnan(value):
        return EDGE_DEFAULT
    rounded = round_half_away(value)
    if rounded is None:
        return EDGE_MAX if value > 0 else EDGE_MIN
    return max(EDGE_MIN, min(EDGE_MAX, rounded))


def blank_edge(source_id: str, target_id: str) -> Edge:
    """The edge of a pair with no history: neutral numbers, no summary, no facts."""
    return Edge(source_id, target_id, EDGE_DEFAULT, EDGE_DEFAULT, "", ())


WORLD_EVENT_MOVES: Mapping[WorldEventStatus, frozenset[WorldEventStatus]] = {
    "planned": frozenset({"active", "cancelled"}),
    "active": frozenset({"completed", "cancelled"}),
    "completed": frozenset(),
    "cancelled": frozenset(),
}
"""The statuses a world event can move to, from each status."""

OPEN_STATUSES: tuple[WorldEventStatus, ...] = ("planned", "active")
"""The statuses from which a world event can still move."""

Moved = ev.WorldEventStarted | ev.WorldEventCompleted | ev.WorldEventCancelled

MOVE_EVENTS: Mapping[WorldEventStatus, type[Moved]] = {
    "active": ev.WorldEventStarted,
    "completed": ev.WorldEventCompleted,
    "cancelled": ev.WorldEventCancelled,
}
"""The event that records a world event's move to each status."""

MOVED_TO: Mapping[type[ev.WorldEventMove], WorldEventStatus] = {
    event: to for to, event in MOVE_EVENTS.items()
}
"""The status each move event leaves its world event in."""


def can_move(status: str, to: str) -> bool:
    """Whether a world event that is ``status`` may become ``to``."""
    return any(s == status and to in moves for s, moves in WORLD_EVENT_MOVES.items())


def moved_from(to: WorldEventStatus) -> frozenset[WorldEventStatus]:
    """The statuses from which a world event may become ``to``."""
    return frozenset(s for s, moves in WORLD_EVENT_MOVES.items() if to in moves)


def world_event_moved(
    chat_id: str,
    world_event_id: int,
    to: WorldEventStatus,
    artifacts: Artifacts,
    present: ev.Present = None,
) -> list[ev.Event]:
    """The events of a world event's move to ``to``; completing it also promotes its artifacts.

    ``present`` is who witnessed the move (everyone present), recorded on the move.
    """
    events: list[ev.Event] = [MOVE_EVENTS[to](chat_id, world_event_id, present)]
    if to == "completed":
        events.extend(promotions(chat_id, world_event_id, artifacts))
    return events


def _delta(value: int) -> int:
    return max(-MAX_EDGE_DELTA, min(MAX_EDGE_DELTA, value))


def promotions(chat_id: str, world_event_id: int, artifacts: Artifacts) -> list[ev.Event]:
    """The events that put a completed world event's artifacts into state.

    One edge update per pair (its facts and its deltas together), then one
    acquired object per object. An edge keeps its latest ``MAX_FACTS`` facts,
    so an update carries no more than that; a delta past the bounds' span
    (stored under older limits) moves the edge as far as the span does.
    """
    facts: dict[tuple[str, str], list[str]] = {}
    for fact in artifacts.knowledge_facts:
        facts.setdefault((fact.source_id, fact.target_id), []).append(fact.fact)
    changes = {(c.source_id, c.target_id): c for c in artifacts.relationship_changes}
    out: list[ev.Event] = []
    for pair in dict.fromkeys([*facts, *changes]):
        change = changes.get(pair)
        out.append(
            ev.EdgeUpdate(
                pair[0],
                pair[1],
                chat_id=chat_id,
                affinity_delta=_delta(change.affinity_delta) if change else 0,
                trust_delta=_delta(change.trust_delta) if change else 0,
                knowledge_facts=tuple(facts.get(pair, ())[-MAX_FACTS:]),
            )
        )
    for obj in artifacts.acquired_objects:
        out.append(ev.ObjectAcquired(chat_id, obj.holder_id, obj.name, world_event_id))
    return out


def author_note_problem(text: str, depth: int) -> str | None:
    """What is wrong with an author's note, for the person; ``None`` when it can be kept."""
    if not 0 <= depth <= MAX_NOTE_DEPTH:
        return f"depth must be between 0 and {MAX_NOTE_DEPTH} messages from the end, not {depth}"
    if len(text) > MAX_AUTHOR_NOTE:
        return (
            f"the author's note is {len(text)} characters; at most {MAX_AUTHOR_NOTE} are allowed"
        )
    return None
