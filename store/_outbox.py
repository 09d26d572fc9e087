"""The per-chat message journal behind the protocol's ``seq``.

Every numbered chat message is stamped with its chat's next ``seq`` and kept
as wire JSON in the same transaction as the events it reports, so a client
that reconnects with ``after_seq`` gets exactly what it missed, and a seq is
never handed out twice: the counter lives in its own table, outside the
projections, so neither a rewind nor a rebuild moves it back.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, cast

import attrs

from protocol import ChatMessage, ChatState, Token, to_wire

from ._conn import Connection
from ._records import WireFrame

KEEP_MESSAGES = 2000
"""Messages kept per chat for clients that resume; older ones are pruned."""

PRUNE_EVERY = 100
"""Prune a chat's journal once per this many messages, not on every one."""


def last_seq(conn: Connection, chat_id: str) -> int:
    """The seq of the chat's latest message; 0 before the first."""
    for (seq,) in conn.execute("SELECT seq FROM chat_seq WHERE chat_id = ?", (chat_id,)):
        return int(seq)
    return 0


def stamp(
    conn: Connection, messages: Sequence[ChatMessage], keep: int = KEEP_MESSAGES
) -> tuple[ChatMessage, ...]:
    """Give each message its chat's next seq and journal it; the caller holds the transaction."""
    stamped = []
    for message in messages:
        if isinstance(message, Token | ChatState):
            # Tokens are ephemeral and a chat_state carries the seq it reflects:
            # neither takes a number of its own.
            raise TypeError(f"{type(message).__name__} messages are not numbered")
        chat_id = message.chat_id
        seq = last_seq(conn, chat_id) + 1
        conn.execute(
            "INSERT INTO chat_seq(chat_id, seq) VALUES (?, ?) "
            "ON CONFLICT(chat_id) DO UPDATE SET seq = excluded.seq",
            (chat_id, seq),
        )
        numbered = cast(ChatMessage, attrs.evolve(cast(Any, message), seq=seq))
        conn.execute(
            "INSERT INTO outbox(chat_id, seq, payload) VALUES (?, ?, ?)",
            (chat_id, seq, json.dumps(to_wire(numbered), ensure_ascii=False)),
        )
        if seq % PRUNE_EVERY == 0:
            conn.execute(
                "DELETE FROM outbox WHERE chat_id = ? AND seq <= ?", (chat_id, seq - keep)
            )
        stamped.append(numbered)
    return tuple(stamped)


def messages_after(conn: Connection, chat_id: str, seq: int) -> list[WireFrame] | None:
    """The chat's journaled messages after ``seq``, oldest first.

    None when they cannot all be replayed: some were pruned, or ``seq`` is
    ahead of the chat (a client from another database, or a bug); the client
    then needs a fresh ``chat_state``.
    """
    last = last_seq(conn, chat_id)
    if seq < 0 or seq > last:
        return None
    if seq == last:
        return []
    rows = [
        (n, text)
        for n, text in conn.execute(
            "SELECT seq, payload FROM outbox WHERE chat_id = ? AND seq > ? ORDER BY seq",
            (chat_id, seq),
        )
    ]
    if not rows or rows[0][0] != seq + 1:
        return None
    return [json.loads(text) for _, text in rows]
