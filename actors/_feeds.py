"""The feeds of the chats in use: found by chat id, made from the store's seq."""

from __future__ import annotations

from collections.abc import Callable

import attrs

from store import AsyncStore, Store

from ._feed import ChatFeed, Tap

OPEN_TRIES = 10
"""Bound on remaking a chat's feed dropped meanwhile (once in a blue moon, never twice)."""


@attrs.frozen
class FeedHooks:
    """How a cluster node follows the feeds (docs/scale-out.md); none on one machine."""

    tap: Tap | None = None
    """Told everything every feed publishes (the owner passes it on)."""
    opened: Callable[[str, ChatFeed], None] | None = None
    """A chat's feed was made (a node that does not own the chat starts relaying it)."""
    dropped: Callable[[str], None] | None = None
    """A chat's feed was dropped (nobody on this node follows the chat any more)."""


class Feeds:
    """Every chat's feed in use now; the engine decides when one is dropped."""

    def __init__(
        self, store: AsyncStore, *, max_buffer: int, hooks: FeedHooks | None = None
    ) -> None:
        self._store = store
        self._max_buffer = max_buffer
        self._feeds: dict[str, ChatFeed] = {}
        self._hooks = hooks or FeedHooks()

    def __call__(self, chat_id: str) -> ChatFeed:
        """The chat's feed; ``KeyError`` when it has none now (nobody to tell)."""
        return self._feeds[chat_id]

    def __contains__(self, chat_id: str) -> bool:
        return chat_id in self._feeds

    def items(self) -> list[tuple[str, ChatFeed]]:
        """``(chat_id, feed)`` of every feed in use."""
        return list(self._feeds.items())

    async def open(self, chat_id: str) -> ChatFeed:
        """The chat's feed, made if it has none now.

        Raises the store's errors (``StorageFull`` cannot happen: it reads).
        """

        def make(last: int) -> None:
            # Made as the store answers, in order with the chat's writes (see
            # AsyncStore.commit): every message committed after ``last`` reaches it.
            if chat_id not in self._feeds:
                feed = ChatFeed(chat_id, last, max_buffer=self._max_buffer, tap=self._hooks.tap)
                self._feeds[chat_id] = feed
                if self._hooks.opened is not None:
                    self._hooks.opened(chat_id, feed)

        for _ in range(OPEN_TRIES):
            feed = self._feeds.get(chat_id)
            if feed is not None:
                return feed
            # A feed made here may be dropped again before this task resumes (the
            # chat passivated, its last watcher left): then make another.
            await self._store.commit(Store.last_seq, make, chat_id)
        raise RuntimeError(f"chat {chat_id}'s feed was dropped as often as it was made")

    def drop(self, chat_id: str) -> None:
        """Forget the chat's feed; whoever comes next makes a fresh one."""
        if self._feeds.pop(chat_id, None) is not None and self._hooks.dropped is not None:
            self._hooks.dropped(chat_id)
