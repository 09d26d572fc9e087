"""What the actors share: the store, the feeds, the model backends and the pool."""

from __future__ import annotations

from collections.abc import Callable
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
    """The feed of a chat (made on first use)."""
    pool: Any = None
    """The :class:`~actors._pool.ClassifierPool`."""
    significance: Any = None
    """ActorRef of the significance worker."""
    bots: Any = None
    """Registry of bot actors."""
