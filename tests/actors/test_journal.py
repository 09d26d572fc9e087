"""A chat's journal: one call commits a named write and publishes it, in seq order, no gap.

The store runs on its real thread with a real file (real clock); every wait is bounded.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import trio
import trio.lowlevel

from actors._feed import ChatFeed
from actors._journal import Journal
from protocol import BeatComplete, ChatMessage, TurnSettled, UserTurn, WorldEvent
from protocol import events as ev
from store import Store, add_user_turn, open_store, plan_world_event, settle_turn

BOUND = 20.0


def make_chat(s: Store) -> str:
    bot_id = s.new_bot_id("Mira")
    s.append(ev.BotCreated(bot_id, "Mira", "a barkeep", ""))
    chat_id = s.new_chat_id()
    s.append(ev.ChatCreated(chat_id, "A story", bot_id, None, "The Eel"))
    return chat_id


def seq_of(message: Any) -> int:
    return int(message.seq)


class Feeds:
    """The engine's feed lookup, with a feed made from the store's seq in commit order."""

    def __init__(self) -> None:
        self.feeds: dict[str, ChatFeed] = {}
        self.published: list[ChatMessage] = []

    def __call__(self, chat_id: str) -> ChatFeed:
        return self.feeds[chat_id]

    def made(self, chat_id: str) -> Callable[[int], None]:
        def make(last: int) -> None:
            feed = ChatFeed(chat_id, last)
            original = feed.deliver

            def deliver(messages: Sequence[ChatMessage]) -> None:
                self.published.extend(messages)
                original(messages)

            feed.deliver = deliver  # type: ignore[method-assign]
            self.feeds[chat_id] = feed

        return make


async def test_concurrent_writes_are_published_in_seq_order_before_each_writer_resumes(
    tmp_path: Path,
) -> None:
    feeds = Feeds()
    async with open_store(tmp_path / "troupe.db", data_dir=tmp_path) as astore:
        chat_id = await astore.run(make_chat)
        await astore.commit(Store.last_seq, feeds.made(chat_id), chat_id)
        journal = Journal(astore, feeds, chat_id)
        rng = random.Random(7)

        async def writer(n: int) -> None:
            for i in range(10):
                if rng.random() < 0.5:
                    await trio.lowlevel.checkpoint()
                result = await journal.write(
                    plan_world_event, ev.WorldEventCreated(chat_id, f"event {n}.{i}")
                )
                # Published before the writer resumed, whoever else resumed first.
                assert feeds(chat_id).published_seq >= seq_of(result.messages[0])

        with trio.fail_after(BOUND):
            async with trio.open_nursery() as nursery:
                for n in range(8):
                    nursery.start_soon(writer, n)
        last = await astore.run(Store.last_seq, chat_id)

    seqs = [seq_of(m) for m in feeds.published]
    assert seqs == list(range(1, last + 1))
    assert len(seqs) == 80
    assert all(isinstance(m, WorldEvent) for m in feeds.published)


async def test_a_feed_made_while_writes_are_in_flight_misses_none_of_the_later_ones(
    tmp_path: Path,
) -> None:
    feeds = Feeds()
    async with open_store(tmp_path / "troupe.db", data_dir=tmp_path) as astore:
        chat_id = await astore.run(make_chat)
        journal = Journal(astore, feeds, chat_id)

        async def writer() -> None:
            for i in range(30):
                await journal.write(plan_world_event, ev.WorldEventCreated(chat_id, f"e{i}"))

        with trio.fail_after(BOUND):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(writer)
                for _ in range(10):
                    await trio.lowlevel.checkpoint()
                await astore.commit(Store.last_seq, feeds.made(chat_id), chat_id)
        start = feeds(chat_id)
        last = await astore.run(Store.last_seq, chat_id)

    seqs = [seq_of(m) for m in feeds.published]
    assert start.published_seq == last
    assert seqs == list(range(last - len(seqs) + 1, last + 1))


async def test_what_was_not_committed_is_published_with_seq_0_and_takes_no_number(
    tmp_path: Path,
) -> None:
    feeds = Feeds()
    async with open_store(tmp_path / "troupe.db", data_dir=tmp_path) as astore:
        chat_id = await astore.run(make_chat)
        await astore.commit(Store.last_seq, feeds.made(chat_id), chat_id)
        journal = Journal(astore, feeds, chat_id)
        said = await journal.write(add_user_turn, ev.UserTurn(chat_id, "Hi.", ()))
        journal.publish([BeatComplete(chat_id, 9, 0, "mira", "cut", True, None, "storage_full")])
        await journal.write(settle_turn, chat_id, said.ids[0])

    kinds = [(type(m), seq_of(m)) for m in feeds.published]
    assert kinds == [(UserTurn, 1), (BeatComplete, 0), (TurnSettled, 2)]
