"""What the actors share: the store, the feeds, the model backends and the pool."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import attrs

from llm import Backend
from store import AsyncStore

from ._feed import ChatFeed
from ._settings import EngineSettings


@attrs.define
class Services:
    """Handed to every actor at construction; the engine owns all of it."""

    settings: EngineSettings
    store: AsyncStore
    narrative: Backend
    feed: Callable[[str], ChatFeed]
    """The feed of a chat in use now; KeyError when it has none (nobody to tell)."""
    open_feed: Callable[[str], Awaitable[ChatFeed]]
    """The feed of a chat, made if needed (a chat actor's, as it starts)."""
    pool: Any = None
    """The :class:`~actors._pool.ClassifierPool`."""
    significance: Any = None
    """ActorRef of the significance worker."""
    bots: Any = None
    """Registry of bot actors."""
