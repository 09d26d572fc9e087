"""The actors of troupe and the engine that owns them.

Owns: the chat actor (one per chat: serializes turns, runs each with the
turn driver that executes story's turn machine, writes through the chat's
journal, which publishes what it commits), the bot actor (one per
character: builds its prompts from its own view of the world), the classifier
pool (bounded, prioritised, every call with a timeout and a safe default),
the significance worker, each chat's feed of outgoing messages, the
:class:`Engine` that the gateway and the replay runner talk to, and its
:class:`Library` of imports and exports (cards, lorebooks, chats).
"""

from ._engine import Engine, open_engine
from ._feed import ChatFeed, Resync, merge_tokens
from ._feeds import FeedHooks
from ._library import IMPORT_LIMIT, ImportAnswer, ImportRefused, Library, store_import
from ._settings import Budgets, EngineSettings

__all__ = [
    "IMPORT_LIMIT",
    "Budgets",
    "ChatFeed",
    "Engine",
    "EngineSettings",
    "FeedHooks",
    "ImportAnswer",
    "ImportRefused",
    "Library",
    "Resync",
    "merge_tokens",
    "open_engine",
    "store_import",
]
