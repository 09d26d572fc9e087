"""How committed events read on the wire: the chat messages the store's writes produce.

One function per message that more than one write builds, so a beat's
``beat_complete`` reads the same whether the beat ended live, was held for
lack of space, or was closed by crash recovery.
"""

from __future__ import annotations

from protocol import BeatComplete, Edge, EdgeUpdate
from protocol import events as ev


def beat_complete(end: ev.AssistantTurn, event_id: int) -> BeatComplete:
    """The ``beat_complete`` of a streamed beat's end, committed as ``event_id``.

    ``event_id`` 0 tells of an end that could not be written (yet); such a
    message also keeps ``seq`` 0 (see docs/storage.md, "A full disk").
    """
    if end.started_id is None:
        raise ValueError("only a streamed beat's end (with its started_id) has a beat_complete")
    return BeatComplete(
        end.chat_id,
        end.started_id,
        event_id,
        end.speaker_id,
        end.text,
        end.truncated,
        end.interjection_of,
        end.error,
    )


def edge_update(chat_id: str, update: ev.EdgeUpdate, edge: Edge) -> EdgeUpdate:
    """The ``edge_update`` message of an applied edge event; ``edge`` is the edge after it."""
    return EdgeUpdate(
        chat_id,
        update.source_id,
        update.target_id,
        edge.affinity,
        edge.trust,
        update.affinity_delta,
        update.trust_delta,
        tuple(update.knowledge_facts),
    )
