"""Which older turns a prompt reads: whole blocks, so that its start stays put.

A model server that keeps the evaluated prompt between turns (the embedded
model does, per chat) reads again only what follows the first token that
changed. If the oldest turn of the dialogue went every time a new one came,
the dialogue's start, and every token after it, would change on every turn.
So turns are grouped in blocks by their event ids (``DIALOGUE_BLOCK`` ids a
block; a chat's exchange takes a handful of ids, so a block holds a few
exchanges), and the window and the soft budget's cut drop whole blocks: the
start moves only when a whole block has to go, every few exchanges.
"""

from __future__ import annotations

from collections.abc import Sequence

from protocol import Turn

DIALOGUE_BLOCK = 32
"""Event ids a block of dialogue spans."""


def block_of(event_id: int) -> int:
    """The block an event belongs to."""
    return event_id // DIALOGUE_BLOCK


def stable_window(turns: Sequence[Turn], limit: int) -> tuple[Turn, ...]:
    """The newest turns, at most ``limit``, starting where a block starts.

    ``turns`` are oldest first and should reach back further than ``limit``
    (read ``limit + DIALOGUE_BLOCK`` of them), so the window can start at the
    oldest block start within the last ``limit``: that start stays the same
    until it falls out of them. If no block starts there, the last ``limit``.
    """
    turns = tuple(turns)
    if limit <= 0:
        return ()
    if len(turns) <= limit:
        return turns
    for index in range(len(turns) - limit, len(turns)):
        if block_of(turns[index].event_id) != block_of(turns[index - 1].event_id):
            return turns[index:]
    return turns[-limit:]
