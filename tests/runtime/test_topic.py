"""Topics: publishing never blocks, slow subscribers stay bounded."""

from __future__ import annotations

import trio
import trio.testing

from runtime import Lagged, Topic


def join(prev: object, new: object) -> object | None:
    if isinstance(prev, str) and isinstance(new, str):
        return prev + new
    return None


async def test_every_subscriber_gets_every_message_in_order() -> None:
    topic = Topic()
    async with topic.subscribe() as a, topic.subscribe() as b:
        for n in range(10):
            topic.publish(n)
        got_a = [a.receive_nowait() for _ in range(10)]
        got_b = [await b.__anext__() for _ in range(10)]
    assert got_a == got_b == list(range(10))
    topic.publish("nobody listens")  # and nothing is kept
    assert topic.statistics()["subscribers"] == []


async def test_mergeable_messages_coalesce_for_a_laggard() -> None:
    topic = Topic(merge=join, max_buffer=4)
    async with topic.subscribe() as sub:
        for piece in ["The ", "storm ", "breaks."]:
            topic.publish(piece)
        topic.publish(7)
        topic.publish("After.")
        assert sub.receive_nowait() == "The storm breaks."
        assert sub.receive_nowait() == 7
        assert sub.receive_nowait() == "After."
        assert sub.statistics()["merged"] == 2


async def test_a_never_reading_subscriber_stays_bounded_and_is_told_it_lagged() -> None:
    topic = Topic(merge=None, max_buffer=64)
    async with topic.subscribe() as slow, topic.subscribe() as fast:
        for n in range(100_000):
            topic.publish(n)
            assert fast.receive_nowait() == n
            assert slow.statistics()["depth"] <= 65
        first = slow.receive_nowait()
        assert isinstance(first, Lagged)
        assert first.dropped > 0
        rest = []
        while True:
            try:
                rest.append(slow.receive_nowait())
            except trio.WouldBlock:
                break
        assert rest == list(range(100_000 - len(rest), 100_000))
        assert slow.statistics()["lagged"] > 1000


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
            sub.close()
    assert got == ["hello"]
