"""Who is in a chat's scene for a turn, as the turn machine reads it."""

from __future__ import annotations

import attrs

import story
from protocol import YOU_ID, Bot
from store import AsyncStore, Store


async def load_cast(store: AsyncStore, chat_id: str, person_id: str = YOU_ID) -> story.Cast:
    """The chat's characters in its scene now (in cast order) and its people, at its location.

    A cast member who is away is not in the turn's cast: it never speaks and
    witnesses nothing of it. One muted speaks only when ``reply_as`` names it.
    The people are the personas at the chat's table
    (``you`` alone before anyone sat or spoke), and ``person_id``, who is about
    to speak, whether it sat down or not.
    """

    def read(s: Store) -> story.Cast:
        chat = s.get_chat(chat_id)
        if chat is None:
            raise ValueError(f"there is no chat {chat_id!r}")
        host = s.get_bot(chat.host_bot_id)
        if host is None:
            raise ValueError(f"chat {chat_id}'s host {chat.host_bot_id!r} is gone")
        ids = s.people_of(chat_id)
        if person_id not in ids:
            ids = (*chat.people, person_id)  # a first word at this table
        people = tuple(p for p in map(s.get_persona, ids) if p is not None)
        # A card's {{user}} is whoever is about to speak.
        user = next((p.name for p in people if p.id == person_id), s.get_you().name)
        bots = (s.get_bot(bot_id) for bot_id in chat.present)
        characters = tuple(_filled(s, bot, user) for bot in bots if bot is not None)
        return story.Cast(
            chat.id, chat.location, characters, people, muted=frozenset(chat.muted or ())
        )

    return await store.run(read)


def _filled(s: Store, bot: Bot, you: str) -> Bot:
    """A bot whose persona speaks in card macros (``{{char}}``, ``{{user}}``) with the names
    filled in, as every prompt of the turn (classifiers included) must read it."""
    card = s.card_of(bot.id) if bot.card else None
    char = (card.nickname if card is not None else "") or bot.name
    persona = story.fill_macros(bot.persona, char, you)
    return bot if persona == bot.persona else attrs.evolve(bot, persona=persona)
