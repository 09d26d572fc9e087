"""The frozen values the store hands back: append results, log rows, previews."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import attrs

from protocol import Artifacts, ChatMessage, WorldEventStatus
from protocol import events as ev

WireFrame = dict[str, Any]
"""A chat message as wire JSON, as the store journals it for clients that resume."""

Render = Callable[[tuple[int, ...]], Sequence[ChatMessage]]
"""Builds an append's chat messages from the new event ids, inside its transaction."""


@attrs.frozen
class AppendResult:
    """What an append wrote: the events' ids, and its chat messages stamped with their seq."""

    ids: tuple[int, ...]
    messages: tuple[ChatMessage, ...] = ()


@attrs.frozen
class StoredEvent:
    """One row of the log with its payload decoded, and the marks that hide it."""

    id: int
    at: str
    chat_id: str | None
    kind: str
    event: ev.Event
    superseded_by: int | None
    rewound_by: int | None

    @property
    def visible(self) -> bool:
        """Neither superseded nor rewound: the event still shapes the story."""
        return self.superseded_by is None and self.rewound_by is None


@attrs.frozen
class RewindPreview:
    """What a rewind would take out of a chat: how many events, and how many of each kind."""

    total: int
    by_kind: dict[str, int]


@attrs.frozen
class WorldEventRow:
    """A world event as the turn flow needs it: its state and what completing it changes."""

    id: int
    title: str
    description: str
    status: WorldEventStatus
    artifacts: Artifacts
    chat_id: str
