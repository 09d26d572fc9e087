"""What the actors share: the store, the feeds, the model backend, the pool and the workers."""

from __future__ import annotations

import attrs

from llm import Backend
from runtime import ActorRef, Registry
from store import AsyncStore

from ._feeds import Feeds
from ._pool import ClassifierPool
from ._settings import EngineSettings


@attrs.frozen
class Services:
    """Handed to every chat actor at construction; the engine owns all of it."""

    settings: EngineSettings
    store: AsyncStore
    narrative: Backend
    feeds: Feeds
    pool: ClassifierPool
    significance: ActorRef
    """The significance worker."""
    bots: Registry
    """The bot actors, one per character."""
