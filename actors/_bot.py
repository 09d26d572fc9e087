"""The bot actor: one per character, shared by every chat it is in.

It knows its persona and reads its own memories and outgoing edges to build
the prompt for each of its beats. A bot in several chats builds their prompts
one at a time, which is cheap; the beats themselves stream in each chat's own
cancel scope, so two chats never wait for each other's tokens.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs

from protocol import Bot
from runtime import Actor
from store import AsyncStore, Store
from story import Prompt


@attrs.frozen
class BuildPrompt:
    """Assemble this bot's narrative prompt for a beat (``inputs`` built by the turn)."""

    build: Callable[[Store, Bot | None], Prompt]
    """A function of (store, bot) returning the prompt; runs in the store's thread."""


@attrs.frozen
class Forget:
    """The bot changed or was deleted: drop what is cached."""


class BotActor(Actor):
    """A character: its persona and its view of the world."""

    def __init__(self, bot_id: str, store: AsyncStore) -> None:
        self.bot_id = bot_id
        self.store = store
        self.bot: Bot | None = None
        self.prompts_built = 0

    async def on_start(self) -> None:
        self.bot = await self.store.run(Store.get_bot, self.bot_id)

    async def handle(self, message: object) -> object:
        if isinstance(message, Forget):
            self.bot = await self.store.run(Store.get_bot, self.bot_id)
            return None
        if isinstance(message, BuildPrompt):
            if self.bot is None:
                self.bot = await self.store.run(Store.get_bot, self.bot_id)
            bot = self.bot
            self.prompts_built += 1
            return await self.store.run(lambda s: message.build(s, bot))
        raise TypeError(f"a bot does not handle {type(message).__name__}")
