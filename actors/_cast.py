"""Who is in a chat's scene for a turn, and what the person said."""

from __future__ import annotations

import attrs

from protocol import YOU_ID, Bot, Chat, Entity
from store import AsyncStore, Store


@attrs.frozen
class Cast:
    """Who is in the chat's scene for this turn."""

    chat: Chat
    you: Entity
    host: Bot
    guest: Bot | None

    @property
    def bots(self) -> tuple[Bot, ...]:
        """The characters present, host first."""
        return (self.host,) if self.guest is None else (self.host, self.guest)

    @property
    def present_ids(self) -> tuple[str, ...]:
        """Everyone present: the bots and you."""
        return (*(b.id for b in self.bots), YOU_ID)

    def name_of(self, entity_id: str) -> str:
        """A display name for an entity present."""
        if entity_id == YOU_ID:
            return self.you.name
        for bot in self.bots:
            if bot.id == entity_id:
                return bot.name
        return entity_id

    def bot(self, bot_id: str) -> Bot:
        """The bot present with this id."""
        for bot in self.bots:
            if bot.id == bot_id:
                return bot
        raise KeyError(bot_id)


async def load_cast(store: AsyncStore, chat_id: str) -> Cast:
    """Read the chat and who is in it."""

    def read(s: Store) -> Cast:
        chat = s.get_chat(chat_id)
        assert chat is not None
        host = s.get_bot(chat.host_bot_id)
        assert host is not None
        guest = s.get_bot(chat.guest_bot_id) if chat.guest_bot_id else None
        return Cast(chat, s.get_you(), host, guest)

    return await store.run(read)


@attrs.frozen
class TurnInput:
    """What the user said this turn."""

    user_turn_id: int
    prose: str
    model_prose: str
    """The prose without OOC: what the characters hear."""
