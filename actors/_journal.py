"""A chat's journal: one call commits a named write and publishes what it committed.

Every write of a chat goes through :meth:`Journal.write` with one of the
store's named writes (``store.begin_beat``, ``store.write_memories``, ...).
The write commits its events with their chat messages, stamped with the
chat's next ``seq``, and the messages are published on the chat's feed as
the store answers, in the order the store ran the writes, before the writer
resumes: no caller can forget to publish, and the feed never sees a gap.

What could not be committed (a beat's end on a full disk) is told with
:meth:`Journal.publish`: ``seq`` 0, outside the numbering (see ``ChatFeed``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Concatenate, ParamSpec

import outcome

from protocol import ChatMessage
from store import AppendResult, AsyncStore, Store

from ._feed import ChatFeed

P = ParamSpec("P")

FeedOf = Callable[[str], ChatFeed]
"""The feed of a chat in use now; ``KeyError`` when it has none (nobody to tell)."""

Write = Callable[Concatenate[Store, P], AppendResult]
"""One of the store's named writes."""


def publish(feeds: FeedOf, messages: Sequence[ChatMessage]) -> None:
    """Publish messages on the feeds their chats have now, in order.

    A chat with no feed has nobody to tell: whoever opens it next starts
    from the store, where the messages already are.
    """
    by_chat: dict[str, list[ChatMessage]] = {}
    for message in messages:
        by_chat.setdefault(message.chat_id, []).append(message)
    for chat_id, mine in by_chat.items():
        try:
            feed = feeds(chat_id)
        except KeyError:
            continue
        feed.deliver(mine)


class Journal:
    """The writes of one chat (and of whoever writes to it: the significance worker)."""

    def __init__(self, store: AsyncStore, feeds: FeedOf, chat_id: str) -> None:
        self.store = store
        self.feeds = feeds
        self.chat_id = chat_id

    def _publish(self, result: AppendResult) -> None:
        publish(self.feeds, result.messages)

    async def write(self, op: Write[P], *args: P.args, **kwargs: P.kwargs) -> AppendResult:
        """Commit ``op(store, *args, **kwargs)`` and publish its messages; returns what it wrote.

        Raises what the write raised (``StorageFull``, ``Invalid``, ...), having
        written and published nothing.
        """
        return await self.store.commit(lambda s: op(s, *args, **kwargs), self._publish)

    def submit(
        self,
        op: Write[P],
        then: Callable[[outcome.Outcome[AppendResult]], None],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> None:
        """Queue a write without waiting: ``then(outcome)``, then its messages are published.

        For a caller that must not wait for the store however busy it is (a
        beat's end). Both run on the trio side, in the order the store ran
        its calls; ``then`` first, so that what the messages conclude (the
        beat in flight ended) is true when they are published.
        """

        def landed(result: outcome.Outcome[AppendResult]) -> None:
            then(result)
            if isinstance(result, outcome.Value):
                self._publish(result.value)

        self.store.submit(lambda s: op(s, *args, **kwargs), landed)

    def publish(self, messages: Sequence[ChatMessage]) -> None:
        """Publish what no write of this journal returned, on the chat's feed of now.

        Messages that were not committed (``seq`` 0: a beat's end on a full
        disk), and those of a beat's end the store held and wrote later, with
        a write of whoever came first.
        """
        publish(self.feeds, messages)
