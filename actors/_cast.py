"""Who is in a chat's scene for a turn, as the turn machine reads it."""

from __future__ import annotations

import story
from store import AsyncStore, Store


async def load_cast(store: AsyncStore, chat_id: str) -> story.Cast:
    """The chat's characters in its scene now (in cast order) and you, at the chat's location.

    A cast member who is away is not in the turn's cast: it never speaks and
    witnesses nothing of it. One muted speaks only when ``reply_as`` names it.
    """

    def read(s: Store) -> story.Cast:
        chat = s.get_chat(chat_id)
        if chat is None:
            raise ValueError(f"there is no chat {chat_id!r}")
        host = s.get_bot(chat.host_bot_id)
        if host is None:
            raise ValueError(f"chat {chat_id}'s host {chat.host_bot_id!r} is gone")
        bots = (s.get_bot(bot_id) for bot_id in chat.present)
        characters = tuple(bot for bot in bots if bot is not None)
        return story.Cast(
            chat.id, chat.location, characters, (s.get_you(),), muted=frozenset(chat.muted or ())
        )

    return await store.run(read)
