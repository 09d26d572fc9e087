"""Topics: publishing never blocks; slow subscribers merge, then lag, and stay bounded."""

from __future__ import annotations

import json

import attrs
import pytest
import trio
import trio.testing

from runtime import Lagged, Topic


def join(prev: object, new: object) -> object | None:
    """Strings (token chunks) merge; anything else stays apart."""
    if isinstance(prev, str) and isinstance(new, str):
        return prev + new
    return None


def drain(sub: object) -> list[object]:
    items = []
    while True:
        try:
            items.append(sub.receive_nowait())  # type: ignore[attr-defined]
        except trio.WouldBlock:
            return items


async def test_every_subscriber_gets_every_message_in_order() -> None:
    topic = Topic()
    async with topic.subscribe() as a, topic.subscribe() as b:
        for n in range(10):
            topic.publish(n)
        got_a = [a.receive_nowait() for _ in range(10)]
        got_b = [await b.receive() for _ in range(10)]
        assert topic.statistics().subscribers == 2
    assert got_a == got_b == list(range(10))
    topic.publish("nobody listens")  # and nothing is kept for anyone
    assert topic.statistics().subscribers == 0
    assert topic.statistics().published == 11


async def test_a_late_subscriber_sees_only_what_comes_after_it() -> None:
    topic = Topic()
    topic.publish("before")
    async with topic.subscribe() as sub:
        topic.publish("after")
        assert drain(sub) == ["after"]


async def test_mergeable_messages_coalesce_for_a_laggard() -> None:
    topic = Topic(merge=join, max_buffer=4)
    async with topic.subscribe() as sub:
        for piece in ["The ", "storm ", "breaks."]:
            topic.publish(piece)
        topic.publish(7)
        topic.publish("After.")
        assert drain(sub) == ["The storm breaks.", 7, "After."]
        assert sub.statistics().merged == 2
        assert topic.statistics().merged == 2


async def test_past_the_bound_the_buffer_becomes_one_lagged_marker() -> None:
    topic = Topic(merge=join, max_buffer=4)
    async with topic.subscribe() as sub:
        for item in [1, 2, 3, 4, 5, "a", "b", 6]:
            topic.publish(item)
        # 1 to 4 were dropped when 5 overflowed; "a" and "b" merged.
        assert drain(sub) == [Lagged(4), 5, "ab", 6]
        stats = sub.statistics()
        assert (stats.lagged, stats.dropped, stats.merged) == (1, 4, 1)


async def test_an_unread_marker_accumulates_what_was_dropped() -> None:
    topic = Topic(max_buffer=3)
    async with topic.subscribe() as sub:
        for n in range(8):
            topic.publish(n)
        # The marker takes a slot: [0 1 2] +3 -> [L3 3], +4 -> [L3 3 4], +5 -> [L5 5],
        # +6 -> [L5 5 6], +7 -> [L7 7]: one marker, however often it overflowed.
        assert drain(sub) == [Lagged(7), 7]
        assert sub.statistics().dropped == 7
        assert sub.statistics().lagged == 3


async def test_a_never_reading_subscriber_stays_bounded_while_others_keep_up() -> None:
    topic = Topic(merge=None, max_buffer=64)
    async with topic.subscribe() as slow, topic.subscribe() as fast:
        deepest = 0
        for n in range(100_000):
            topic.publish(n)
            assert fast.receive_nowait() == n
            deepest = max(deepest, slow.statistics().depth)
        assert deepest == 64
        first, *rest = drain(slow)
        assert isinstance(first, Lagged)
        assert first.dropped + len(rest) == 100_000
        assert rest == list(range(100_000 - len(rest), 100_000))
        assert fast.statistics().lagged == 0
        assert topic.statistics().lagged == slow.statistics().lagged > 1000


async def test_merging_keeps_a_chatty_stream_within_one_slot() -> None:
    topic = Topic(merge=join, max_buffer=2)
    async with topic.subscribe() as sub:
        for _ in range(100_000):
            topic.publish("x")
            assert sub.statistics().depth == 1
        assert drain(sub) == ["x" * 100_000]


async def test_a_failing_merge_keeps_messages_apart_and_publish_still_returns() -> None:
    def broken(prev: object, new: object) -> object:
        raise ZeroDivisionError

    topic = Topic(merge=broken, max_buffer=8)
    async with topic.subscribe() as sub:
        topic.publish(1)
        topic.publish(2)
        assert drain(sub) == [1, 2]


async def test_a_waiting_reader_wakes_on_publish_and_ends_on_close(
    autojump_clock: trio.testing.MockClock,
) -> None:
    topic = Topic()
    got: list[object] = []
    async with topic.subscribe() as sub:

        async def read() -> None:
            async for item in sub:
                got.append(item)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(read)
            await trio.testing.wait_all_tasks_blocked()
            topic.publish("hello")
            await trio.testing.wait_all_tasks_blocked()
            assert got == ["hello"]
            topic.publish("last words")
            sub.close()  # buffered items are still delivered, then iteration ends
    assert got == ["hello", "last words"]
    with pytest.raises(trio.EndOfChannel):
        await sub.receive()


async def test_buffers_must_hold_a_marker_and_a_message() -> None:
    with pytest.raises(ValueError, match="max_buffer"):
        Topic(max_buffer=1)


async def test_statistics_are_frozen_snapshots() -> None:
    topic = Topic(merge=join, max_buffer=4)
    async with topic.subscribe() as sub:
        topic.publish("a")
        topic.publish("b")  # merges into "a"
        before = topic.statistics()
        topic.publish(1)
        assert before.published == 2 and before.per_subscriber[0].depth == 1
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            before.published = 0  # type: ignore[misc]
        # Plain data all the way down, under the same names as the fields.
        assert json.loads(json.dumps(attrs.asdict(topic.statistics()))) == {
            "published": 3,
            "subscribers": 1,
            "merged": 1,
            "lagged": 0,
            "dropped": 0,
            "per_subscriber": [
                {
                    "depth": 2,
                    "max_buffer": 4,
                    "received": 0,
                    "merged": 1,
                    "lagged": 0,
                    "dropped": 0,
                }
            ],
        }
        assert sub.statistics() == topic.statistics().per_subscriber[0]
