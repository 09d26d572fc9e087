"""A long chat made fast: turns written straight through the store's append, no model."""

from __future__ import annotations

from protocol import events as ev
from store import Store


def fill_chat(s: Store, chat_id: str, speaker_id: str, turns: int, batch: int = 200) -> None:
    """Append ``turns`` visible turns to the chat: the person and ``speaker_id`` in turn.

    Each exchange is a ``user_turn`` and the ``assistant_turn`` answering it,
    ``batch`` exchanges to a transaction (an event's id is the log's next one,
    so the answer can name the turn written just before it in the same call).
    """
    written = 0
    while written < turns:
        (next_id,) = s.conn.execute("SELECT coalesce(max(id), 0) + 1 FROM event_log").fetchone()
        events: list[ev.Event] = []
        while written < turns and len(events) < 2 * batch:
            n = written
            if n % 2 == 0:
                prose = f"Turn {n}: what happened next?"
                events.append(ev.UserTurn(chat_id, prose, ()))
                user_id = next_id + len(events) - 1
            else:
                text = f"Turn {n}: the story goes on, one line after another."
                events.append(ev.AssistantTurn(chat_id, speaker_id, user_id, None, text))
            written += 1
        s.append(*events)
