"""The lifecycle classifier: which open world events start, complete or are called off.

Called after a beat when the chat has open (planned or active) world
events, once per turn; completion promotes the event's artifacts in the
same turn. Only legal moves of known events survive validation, at most
one per event. Safe default: nothing moves.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from attrs import frozen

from protocol import MOVE_EVENTS, OPEN_STATUSES, WORLD_EVENT_MOVES, WorldEventStatus, can_move

from .._messages import PromptMessage
from .._text import collapse, shorten
from ._coerce import as_items, as_text, field, load_json


@frozen
class OpenEvent:
    """A world event the classifier may move, as it stands now."""

    id: int
    status: WorldEventStatus
    title: str
    description: str = ""


class Transition(NamedTuple):
    """World event ``event_id`` moves to ``status``."""

    event_id: int
    status: WorldEventStatus


LEGAL_MOVES: Mapping[WorldEventStatus, frozenset[WorldEventStatus]] = WORLD_EVENT_MOVES
"""The moves a world event can make, from each status (the protocol's table)."""

LIFECYCLE_DEFAULT: tuple[Transition, ...] = ()

LIFECYCLE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "transitions": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "event_id": {"type": "integer"},
                    "status": {"type": "string", "enum": list(MOVE_EVENTS)},
                },
                "required": ["event_id", "status"],
                "additionalProperties": False,
            },
        }
    },
    "required": ["transitions"],
    "additionalProperties": False,
}
"""The JSON the lifecycle classifier is asked for (read-only)."""

_STATUS_WORDS: Mapping[str, WorldEventStatus] = {
    "active": "active",
    "start": "active",
    "started": "active",
    "begin": "active",
    "began": "active",
    "begun": "active",
    "ongoing": "active",
    "in_progress": "active",
    "completed": "completed",
    "complete": "completed",
    "done": "completed",
    "finished": "completed",
    "ended": "completed",
    "resolved": "completed",
    "cancelled": "cancelled",
    "canceled": "cancelled",
    "cancel": "cancelled",
    "called_off": "cancelled",
    "aborted": "cancelled",
}


def lifecycle_needed(events: Iterable[OpenEvent]) -> bool:
    """Whether the classifier has anything to move: some event is planned or active."""
    return any(e.status in OPEN_STATUSES for e in events)


def lifecycle_prompt(events: Sequence[OpenEvent], narrative: str) -> tuple[PromptMessage, ...]:
    """Messages asking which of ``events`` the story just started, completed or called off."""
    system = (
        "You track world events in a story. Given the open events and what just happened, "
        "list only the events whose status clearly changed. A planned event can become "
        "active or cancelled; an active event can become completed or cancelled. Reply with "
        'JSON only, in this form:\n{"transitions": [{"event_id": 1, "status": "active"}]}\n'
        'Use {"transitions": []} when nothing changed.'
    )
    listed = "\n".join(
        f"- id {e.id}, {e.status}: {shorten(collapse(e.title), 200)}"
        + (f" ({shorten(collapse(e.description), 400)})" if e.description.strip() else "")
        for e in events[:20]
    )
    user = f"Open events:\n{listed or '(none)'}\n\nWhat just happened:\n" + shorten(
        collapse(narrative), 3000
    )
    return (PromptMessage("system", system), PromptMessage("user", user))


def _event(value: object, events: Sequence[OpenEvent]) -> OpenEvent | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str) and value.strip().lstrip("#").isdigit() and len(value) < 20:
        value = int(value.strip().lstrip("#"))
    if isinstance(value, int):
        return next((e for e in events if e.id == value), None)
    if isinstance(value, str):
        title = collapse(value).casefold()
        return next((e for e in events if collapse(e.title).casefold() == title), None)
    return None


def validate_lifecycle(raw: object, events: Sequence[OpenEvent]) -> tuple[Transition, ...]:
    """Read the moves, keeping only known events, legal moves, and the first move of each.

    An event may be named by its id (a number or numeric string) or by its
    exact title; statuses accept common synonyms ("started", "done",
    "canceled"). Never raises.
    """
    data = load_json(raw)
    items = field(data, "transitions", "changes", "events") if isinstance(data, Mapping) else data
    moved: dict[int, Transition] = {}
    for item in as_items(items):
        event = _event(field(item, "event_id", "id", "world_event_id", "event", "title"), events)
        word = as_text(field(item, "status", "to", "new_status"), 40).casefold()
        status = _STATUS_WORDS.get(word.replace(" ", "_").replace("-", "_"))
        if event is None or status is None or event.id in moved:
            continue
        if can_move(event.status, status):
            moved[event.id] = Transition(event.id, status)
    return tuple(moved.values())
