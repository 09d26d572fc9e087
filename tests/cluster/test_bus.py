"""The Redis bus against a real redis-server on loopback: fan-out, gaps, requests, outages."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator
from contextlib import AsyncExitStack
from pathlib import Path

import coredis
import pytest
import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from cluster import (
    Bus,
    BusClosed,
    BusSettings,
    Gap,
    NodeUnreachable,
    RequestFailed,
    Subscription,
    chat_channel,
    open_bus,
)
from cluster._fanout import Fanout
from cluster._rpc import decode_answer, decode_request, encode_answer, encode_request
from tests.support.servers import Server, redis_server, redis_url

# Quick to come back, so an outage in a test lasts a fraction of a second.
FAST = BusSettings(backoff_min=0.01, backoff_max=0.1)


@pytest.fixture(scope="module")
def redis() -> Iterator[Server]:
    with redis_server() as server:
        yield server


@pytest.fixture
def url(redis: Server) -> str:
    redis.start()  # a test that killed it may have failed before starting it again
    return redis_url(redis)


async def numsub(url: str, channel: bytes) -> int:
    """Subscribers Redis counts on ``channel``, asked on a connection of the test's own."""
    async with coredis.Redis.from_url(url) as raw:
        counts = await raw.pubsub_numsub(channel)
    return int(counts.get(channel, 0))


async def numsub_settled(bus: Bus, url: str, channel: bytes) -> int:
    """:func:`numsub` once Redis has answered every (un)subscribe the bus sent."""
    with trio.fail_after(5):
        await bus.settled()
    return await numsub(url, channel)


async def next_item(frames: Subscription) -> bytes | Gap:
    with trio.fail_after(5):
        return await frames.__anext__()


async def next_frame(frames: Subscription) -> bytes:
    item = await next_item(frames)
    assert isinstance(item, bytes), item
    return item


# --- the wire form, without Redis ------------------------------------------------------


def test_request_and_answer_frames_read_back() -> None:
    rid = bytes(range(16))
    assert decode_request(encode_request(rid, "h:1:2", b"pay\x00load")) == (
        rid,
        "h:1:2",
        b"pay\x00load",
    )
    assert decode_answer(encode_answer(rid, True, b"ok")) == (rid, True, b"ok")
    assert decode_answer(encode_answer(rid, False, b"no")) == (rid, False, b"no")
    with pytest.raises(ValueError):
        decode_request(b"Q" + rid)
    with pytest.raises(ValueError):
        decode_answer(b"X" + rid)


def test_the_last_of_quick_turns_decides_when_a_channel_is_live() -> None:
    """SUBSCRIBE, UNSUBSCRIBE, SUBSCRIBE in flight: only the third answer makes it live."""
    sent: list[tuple[bytes, ...]] = []
    fanout = Fanout()
    fanout.up(lambda *command: sent.append(command) or True)
    early, later = Subscription(4), Subscription(4)
    fanout.attach(b"ch", early)
    fanout.detach(b"ch", early)
    channel = fanout.attach(b"ch", later)
    assert sent == [(b"SUBSCRIBE", b"ch"), (b"UNSUBSCRIBE", b"ch"), (b"SUBSCRIBE", b"ch")]
    fanout.push([b"subscribe", b"ch", 1])
    fanout.push([b"unsubscribe", b"ch", 0])
    assert not channel.live
    fanout.push([b"subscribe", b"ch", 1])
    assert channel.live
    # It joined before the channel was live and was handed out: it gets a Gap.
    assert later.pending == 1
    fanout.push([b"message", b"ch", b"frame"])
    assert later.pending == 2
    # The connection goes: nothing is live; the next one subscribes again, in one command.
    fanout.down()
    assert not channel.live
    fanout.up(lambda *command: sent.append(command) or True)
    assert sent[-1] == (b"SUBSCRIBE", b"ch")


async def test_bad_input_is_refused(url: str) -> None:
    with pytest.raises(ValueError, match="redis://"):
        async with open_bus("http://127.0.0.1:1/", "n:1:1"):
            pass
    with pytest.raises(ValueError, match="no spaces"):
        async with open_bus(url, "a node"):
            pass
    with pytest.raises(ValueError):
        BusSettings(buffer=0)
    async with open_bus(url, "n:1:1", FAST) as bus:
        with pytest.raises(TypeError):
            bus.publish_nowait("chat", "text")  # type: ignore[arg-type]
        with pytest.raises(ValueError):
            bus.publish_nowait("", b"frame")
        assert bus.statistics().published == 0


# --- frames ----------------------------------------------------------------------------


async def test_a_thousand_frames_arrive_in_order(url: str) -> None:
    async with (
        open_bus(url, "owner:1:1", FAST) as owner,
        open_bus(url, "gw:1:1", FAST) as gw,
        gw.subscribe("c-order") as frames,
    ):
        for i in range(1000):
            await owner.publish("c-order", b"%d" % i)
        received = [await next_frame(frames) for _ in range(1000)]
        assert received == [b"%d" % i for i in range(1000)]
        await owner.flush()
        assert owner.statistics().published == 1000
        assert owner.statistics().dropped == 0
        assert gw.statistics().gaps == 0


async def test_local_subscribers_share_one_redis_subscription(url: str) -> None:
    channel = chat_channel("c-shared")
    async with open_bus(url, "owner:1:1", FAST) as owner, open_bus(url, "gw:1:1", FAST) as gw:
        leaving = AsyncExitStack()
        first = await leaving.enter_async_context(gw.subscribe("c-shared"))
        async with gw.subscribe("c-shared") as second:
            assert await numsub(url, channel) == 1
            assert gw.statistics().subscribers == 2
            await owner.publish("c-shared", b"hello")
            assert await next_frame(first) == b"hello"
            assert await next_frame(second) == b"hello"
        # One left, one stays: the Redis subscription stays.
        await owner.publish("c-shared", b"again")
        assert await next_frame(first) == b"again"
        assert await numsub(url, channel) == 1
        # The last one leaves: the node gives the subscription back.
        await leaving.aclose()
        assert await numsub_settled(gw, url, channel) == 0
        assert gw.statistics().subscribers == 0


async def test_quick_churn_ends_subscribed_and_live(url: str) -> None:
    """SUBSCRIBE/UNSUBSCRIBE in quick turns: the last state wins, and it is live."""
    async with open_bus(url, "owner:1:1", FAST) as owner, open_bus(url, "gw:1:1", FAST) as gw:
        for _ in range(50):
            async with gw.subscribe("c-churn"):
                pass
        async with gw.subscribe("c-churn") as frames:
            await owner.publish("c-churn", b"after the churn")
            assert await next_frame(frames) == b"after the churn"
            assert await numsub(url, chat_channel("c-churn")) == 1
        assert await numsub_settled(gw, url, chat_channel("c-churn")) == 0


async def test_a_slow_subscriber_gets_a_gap_not_memory(url: str) -> None:
    settings = BusSettings(buffer=8, backoff_min=0.01, backoff_max=0.1)
    async with (
        open_bus(url, "owner:1:1", FAST) as owner,
        open_bus(url, "gw:1:1", settings) as gw,
        gw.subscribe("c-slow") as slow,
        gw.subscribe("c-slow") as fast,
    ):
        seen: list[bytes] = []
        done = trio.Event()

        async def read_fast() -> None:
            async for item in fast:
                if isinstance(item, bytes):
                    seen.append(item)
                    if item == b"last":
                        done.set()
                        return

        async with trio.open_nursery() as nursery:
            nursery.start_soon(read_fast)
            for i in range(200):
                await owner.publish("c-slow", b"%d" % i)
            await owner.publish("c-slow", b"last")
            with trio.fail_after(5):
                await done.wait()
        # Every frame reached the slow one's buffer too (one dispatch feeds both),
        # yet it holds at most its bound: the old frames went for a Gap.
        assert slow.pending <= 9
        assert await next_item(slow) == Gap("overflow")
        rest = [await next_frame(slow) for _ in range(slow.pending)]
        assert rest[-1] == b"last"
        assert gw.statistics().gaps >= 1


# --- cancellation ----------------------------------------------------------------------


async def test_cancelled_subscribers_leave_no_subscription(url: str) -> None:
    channel = chat_channel("c-cancel")
    async with open_bus(url, "owner:1:1", FAST) as owner, open_bus(url, "gw:1:1", FAST) as gw:
        # Cancelled before entering: at the wait for Redis to confirm.
        with trio.CancelScope() as scope:
            scope.cancel()
            async with gw.subscribe("c-cancel"):
                raise AssertionError("entered a cancelled block")
        assert gw.statistics().subscribers == 0

        # Cancelled while waiting for a frame.
        async with trio.open_nursery() as nursery:
            entered = trio.Event()

            async def wait_for_a_frame() -> None:
                async with gw.subscribe("c-cancel") as frames:
                    entered.set()
                    await frames.__anext__()
                    raise AssertionError("no frame was published")

            nursery.start_soon(wait_for_a_frame)
            await entered.wait()
            assert await numsub(url, channel) == 1
            nursery.cancel_scope.cancel()
        assert gw.statistics().subscribers == 0
        assert await numsub_settled(gw, url, channel) == 0

        # One of two cancelled: the other keeps the subscription and its frames.
        async with gw.subscribe("c-cancel") as stays:
            with trio.CancelScope() as scope:
                async with gw.subscribe("c-cancel") as goes:
                    await owner.publish("c-cancel", b"one")
                    assert await next_frame(goes) == b"one"
                    scope.cancel()
                    await goes.__anext__()
            await owner.publish("c-cancel", b"two")
            assert await next_frame(stays) == b"one"
            assert await next_frame(stays) == b"two"
            assert await numsub(url, channel) == 1
            assert gw.statistics().subscribers == 1
        assert await numsub_settled(gw, url, channel) == 0
        assert gw.statistics().channels == 1  # the node's own reply channel only


# --- requests between nodes ------------------------------------------------------------


async def test_a_request_gets_its_answer(url: str) -> None:
    async def shout(payload: bytes) -> bytes:
        return payload.upper()

    async with (
        open_bus(url, "a:1:1", FAST) as a,
        open_bus(url, "b:1:1", FAST) as b,
        trio.open_nursery() as nursery,
    ):
        await nursery.start(b.serve, shout)
        assert await a.request("b:1:1", b"hello", timeout=5) == b"HELLO"
        assert b.statistics().served == 1
        nursery.cancel_scope.cancel()


async def test_requests_are_answered_concurrently(url: str) -> None:
    count = 10
    inside = 0
    all_inside = trio.Event()

    async def wait_for_the_others(payload: bytes) -> bytes:
        # Answers only once every request is inside a handler at the same time.
        nonlocal inside
        inside += 1
        if inside == count:
            all_inside.set()
        await all_inside.wait()
        return b"re:" + payload

    async with open_bus(url, "a:1:1", FAST) as a, open_bus(url, "b:1:1", FAST) as b:
        answers: dict[int, bytes] = {}

        async def ask(i: int) -> None:
            answers[i] = await a.request("b:1:1", b"%d" % i, timeout=5)

        async with trio.open_nursery() as nursery:
            await nursery.start(b.serve, wait_for_the_others)
            with trio.fail_after(10):
                async with trio.open_nursery() as askers:
                    for i in range(count):
                        askers.start_soon(ask, i)
            nursery.cancel_scope.cancel()
        assert answers == {i: b"re:%d" % i for i in range(count)}


async def test_a_request_to_an_absent_node_fails_at_once(url: str) -> None:
    async with open_bus(url, "a:1:1", FAST) as a:
        with trio.fail_after(5), pytest.raises(NodeUnreachable, match="no node"):
            await a.request("gone:1:1", b"anyone?", timeout=60)


async def test_a_request_nobody_answers_times_out(url: str) -> None:
    never = trio.Event()

    async def hang(payload: bytes) -> bytes:
        await never.wait()
        return b""

    async with (
        open_bus(url, "a:1:1", FAST) as a,
        open_bus(url, "b:1:1", FAST) as b,
        trio.open_nursery() as nursery,
    ):
        await nursery.start(b.serve, hang)
        with trio.fail_after(5), pytest.raises(NodeUnreachable, match="no answer"):
            await a.request("b:1:1", b"hello?", timeout=0.2)
        nursery.cancel_scope.cancel()


async def test_a_handler_that_raises_fails_the_request(url: str) -> None:
    async def broken(payload: bytes) -> bytes:
        raise KeyError("no such chat")

    async with (
        open_bus(url, "a:1:1", FAST) as a,
        open_bus(url, "b:1:1", FAST) as b,
        trio.open_nursery() as nursery,
    ):
        await nursery.start(b.serve, broken)
        with pytest.raises(RequestFailed, match="KeyError"):
            await a.request("b:1:1", b"x", timeout=5)
        # The node goes on serving.
        with pytest.raises(RequestFailed):
            await a.request("b:1:1", b"y", timeout=5)
        nursery.cancel_scope.cancel()


async def test_a_request_still_waiting_when_the_bus_closes_fails(url: str) -> None:
    inside = trio.Event()
    never = trio.Event()

    async def hang(payload: bytes) -> bytes:
        inside.set()
        await never.wait()
        return b""

    failures: list[BaseException] = []
    asked = trio.Event()

    async def ask(a: Bus) -> None:
        try:
            await a.request("b:1:1", b"x", timeout=30)
        except BusClosed as error:
            failures.append(error)
        finally:
            asked.set()

    async with open_bus(url, "b:1:1", FAST) as b, trio.open_nursery() as outer:
        await outer.start(b.serve, hang)
        async with open_bus(url, "a:1:1", FAST) as a:
            outer.start_soon(ask, a)
            with trio.fail_after(5):
                await inside.wait()
        with trio.fail_after(5):
            await asked.wait()
        outer.cancel_scope.cancel()
    assert len(failures) == 1


# --- Redis going away ------------------------------------------------------------------


async def publish_until_received(bus: Bus, chat_id: str, frames: Subscription) -> bytes:
    """Publish until one frame gets through: the publisher may still be connecting again."""
    with trio.fail_after(10):
        for i in range(1000):
            await bus.publish(chat_id, b"back %d" % i)
            with trio.move_on_after(0.05):  # bounded polling on Redis coming back
                item = await frames.__anext__()
                assert isinstance(item, bytes), item
                return item
    raise AssertionError("no frame got through after Redis came back")


async def test_redis_restarted_mid_stream(redis: Server, url: str) -> None:
    async with (
        open_bus(url, "owner:1:1", FAST) as owner,
        open_bus(url, "gw:1:1", FAST) as gw,
        gw.subscribe("c-outage") as frames,
    ):
        for i in range(10):
            await owner.publish("c-outage", b"%d" % i)
        assert [await next_frame(frames) for _ in range(10)] == [b"%d" % i for i in range(10)]

        await owner.flush()
        redis.kill()
        try:
            before = owner.statistics()
            with trio.fail_after(2):  # publishing during the outage never hangs
                for i in range(200):
                    await owner.publish("c-outage", b"lost %d" % i)
                await owner.flush()
            after = owner.statistics()
            assert after.dropped - before.dropped == 200
            assert after.published == before.published
            assert after.outbox == 0
        finally:
            redis.start()

        # Once the subscription is back, a Gap, then frames published after it.
        assert await next_item(frames) == Gap("resubscribed")
        assert (await publish_until_received(owner, "c-outage", frames)).startswith(b"back")
        assert gw.statistics().reconnects >= 1
        assert gw.statistics().connected
        assert await numsub(url, chat_channel("c-outage")) == 1


async def test_a_redis_that_hangs_is_left_and_found_again(redis: Server, url: str) -> None:
    """Stopped, not killed: nothing closes the sockets, the PINGs and timeouts notice."""
    quick = BusSettings(
        keepalive=0.1,
        command_timeout=0.2,
        connect_timeout=0.2,
        backoff_min=0.01,
        backoff_max=0.1,
    )
    async with (
        open_bus(url, "owner:1:1", quick) as owner,
        open_bus(url, "gw:1:1", quick) as gw,
        gw.subscribe("c-hang") as frames,
    ):
        await owner.publish("c-hang", b"before")
        assert await next_frame(frames) == b"before"
        assert redis.proc is not None
        os.kill(redis.proc.pid, signal.SIGSTOP)
        try:
            before = owner.statistics()
            with trio.fail_after(5):  # publishing to a hung Redis never hangs either
                for i in range(50):
                    await owner.publish("c-hang", b"lost %d" % i)
                await owner.flush()
            assert owner.statistics().dropped - before.dropped == 50
            with trio.fail_after(5):  # the bus notices the hung server: its PINGs go unanswered
                await gw.disconnected()
            assert not gw.statistics().connected
        finally:
            os.kill(redis.proc.pid, signal.SIGCONT)
        assert await next_item(frames) == Gap("resubscribed")
        assert (await publish_until_received(owner, "c-hang", frames)).startswith(b"back")


async def test_joining_while_redis_is_down_gives_a_gap_when_it_returns() -> None:
    with redis_server() as server:
        url = redis_url(server)
        server.stop()
        with trio.fail_after(5):
            async with open_bus(url, "gw:1:1", FAST) as gw:
                assert not gw.statistics().connected
                assert not await gw.publish("c-late", b"nowhere")
                assert gw.statistics().dropped == 1
                with pytest.raises(NodeUnreachable):
                    await gw.request("other:1:1", b"x", timeout=1)
                async with gw.subscribe("c-late") as frames:
                    server.start()
                    assert await next_item(frames) == Gap("resubscribed")
                    assert (await publish_until_received(gw, "c-late", frames)).startswith(b"back")
