"""A chat carried on from another: what its characters take with them.

A chat is its own story: its memories and relationship edges are its own,
and no other chat's prompts or panels see them. A chat started with
``continue_from`` is the one way across. Its characters who were in the
other chat's cast take their memories there (text, significance, pins) and
the edges among them and the person, each written as this chat's own
``memory_written`` / ``memory_scored`` / ``memory_pinned`` / ``edge_update``
event right after ``chat_created``. The copy is in the log, so a rebuild or a
rewind of either chat later re-projects exactly what was carried.
"""

from __future__ import annotations

from collections.abc import Sequence

from protocol import EDGE_DEFAULT, YOU_ID
from protocol import events as ev

from ._errors import NotFound
from ._records import AppendResult
from ._store import Store


def start_chat(s: Store, created: ev.ChatCreated, *opening: ev.Event) -> AppendResult:
    """Append ``chat_created``, what it carries on from another chat, and ``opening``.

    One transaction: an unknown ``continue_from`` (:class:`NotFound`) or any
    refused event writes nothing. Returns the creation and the opening
    events' ids, in that order, without the carried ones.
    """
    source = created.continue_from
    if source is None:
        return s.append(created, *opening)
    if s.get_chat(source) is None:
        raise NotFound(f"there is no chat {source!r} to continue from")
    with s.transaction():
        first = s.append(created)
        carry(s, source, created.chat_id, created.members)
        rest = s.append(*opening) if opening else AppendResult(())
    return AppendResult((*first.ids, *rest.ids))


def carry(s: Store, source: str, chat_id: str, members: Sequence[str]) -> int:
    """Give ``chat_id`` what the bots in both casts knew in ``source``; returns the events.

    Each memory, oldest first, is a new ``memory_written`` (its id is the new
    memory's), then its score and its pin as they were. Then the edges among
    those bots and the person, as one ``edge_update`` each from the blank
    edge to the values they had. The caller holds the transaction.
    """
    shared = [bot_id for bot_id, _present in s.cast_of(source) if bot_id in members]
    written = 0
    for bot_id in shared:
        for memory in s.list_memories(bot_id, source):
            (memory_id,) = s.append(ev.MemoryWritten(chat_id, bot_id, memory.text)).ids
            after: list[ev.Event] = []
            if memory.significance:
                after.append(ev.MemoryScored(chat_id, memory_id, memory.significance))
            if memory.pinned:
                after.append(ev.MemoryPinned(chat_id, memory_id, _pinned_by(s, memory.id)))
            if after:
                s.append(*after)
            written += 1 + len(after)
    ends = {YOU_ID, *shared}
    edges = [
        ev.EdgeUpdate(
            edge.source_id,
            edge.target_id,
            chat_id=chat_id,
            affinity_delta=edge.affinity - EDGE_DEFAULT,
            trust_delta=edge.trust - EDGE_DEFAULT,
            knowledge_facts=edge.knowledge_facts,
            summary=edge.summary or None,
        )
        for edge in s.chat_edges(source)
        if edge.source_id in ends and edge.target_id in ends
    ]
    if edges:
        s.append(*edges)
    return written + len(edges)


def _pinned_by(s: Store, memory_id: int) -> ev.PinnedBy:
    for (by,) in s.conn.execute("SELECT pinned_by FROM memories WHERE id = ?", (memory_id,)):
        return "auto" if by == "auto" else "manual"
    return "manual"
