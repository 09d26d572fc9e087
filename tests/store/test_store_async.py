"""AsyncStore: calls run in order on one thread, cancellation is safe, the loop stays free."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing
from storeworld import Where, said, target

from protocol import TurnSettled
from protocol import events as ev
from store import AsyncStore, NotFound, Store, open_store


async def test_calls_run_on_one_thread_that_is_not_the_loop_s(place: Where) -> None:
    async with open_store(target(place)) as astore:
        threads = {await astore.run(lambda _s: threading.get_ident()) for _ in range(20)}
        assert len(threads) == 1
        assert threading.get_ident() not in threads
        result = await astore.append(ev.BotCreated("mira", "Mira", ""))
        assert await astore.run(Store.get_bot, "mira") is not None
        assert result.ids == (1,)
        stats = astore.statistics()
        assert stats["calls"] == 22 and stats["queued"] == 0 and stats["appended"] == 1
        assert (await astore.run(Store.statistics))["events"] == 1


async def test_errors_come_back_to_the_caller(place: Where) -> None:
    async with open_store(target(place)) as astore:
        with pytest.raises(NotFound):
            await astore.append(ev.UserTurn("nope", "Hi.", said("Hi.")))
        assert await astore.run(Store.event_count) == 0


async def test_calls_keep_their_order(place: Where) -> None:
    async with open_store(target(place)) as astore:
        await astore.append(ev.BotCreated("mira", "Mira", ""), ev.ChatCreated("c1", "T", "mira"))
        async with trio.open_nursery() as nursery:
            for n in range(50):
                nursery.start_soon(astore.record, [TurnSettled("c1", n)])
                await trio.lowlevel.checkpoint()
        replay = await astore.run(Store.messages_after, "c1", 0)
        assert replay is not None
        assert [m["user_turn_id"] for m in replay] == list(range(50))


async def test_a_call_cancelled_before_it_runs_writes_nothing(place: Where) -> None:
    async with open_store(target(place)) as astore:
        with trio.CancelScope() as scope:
            scope.cancel()
            await astore.append(ev.BotCreated("mira", "Mira", ""))
        assert scope.cancelled_caught
        assert await astore.run(Store.event_count) == 0


async def test_a_queued_call_finishes_even_when_its_caller_is_cancelled(place: Where) -> None:
    gate = threading.Event()
    got: list[Any] = []

    def slow_append(s: Store) -> Any:
        gate.wait()
        return s.append(ev.BotCreated("mira", "Mira", ""))

    async with open_store(target(place)) as astore:
        async with trio.open_nursery() as nursery:
            scope = trio.CancelScope()

            async def caller() -> None:
                with scope:
                    got.append(await astore.run(slow_append))

            nursery.start_soon(caller)
            await trio.testing.wait_all_tasks_blocked()
            scope.cancel()
            await trio.testing.wait_all_tasks_blocked()
            assert got == [], "still waiting for the thread"
            gate.set()
        assert got and got[0].ids == (1,), "the caller learns what was written"
        assert await astore.run(Store.event_count) == 1


async def test_closing_waits_for_queued_calls_and_then_refuses(place: Where) -> None:
    store = Store.open(target(place))
    astore = AsyncStore(store)
    await astore.append(ev.BotCreated("mira", "Mira", ""))
    await astore.aclose()
    with pytest.raises(trio.ClosedResourceError):
        await astore.run(Store.event_count)
    await astore.aclose()  # twice is fine
    reopened = Store.open(target(place))
    assert reopened.get_bot("mira") is not None
    reopened.close()


async def watch_loop(call: Callable[[], Any]) -> tuple[int, float, Any]:
    """Run ``call`` while a task spins on checkpoints; returns its turns, worst gap, result."""
    turns, worst, done, result = 0, 0.0, False, None

    async def spin() -> None:
        nonlocal turns, worst
        last = time.perf_counter()
        while not done:
            await trio.lowlevel.checkpoint()
            now = time.perf_counter()
            turns, worst, last = turns + 1, max(worst, now - last), now

    async with trio.open_nursery() as nursery:
        nursery.start_soon(spin)
        await trio.lowlevel.checkpoint()  # let it start
        result = await call()
        done = True
    return turns, worst, result


async def test_the_loop_keeps_running_while_the_store_works(tmp_path: Path) -> None:
    """Measured, not asserted in time: the loop keeps turning during big writes and a rewind.

    If a call ran on the loop, the spinning task could not take a single turn
    until it was done; here it takes many. The worst gap between its turns is
    recorded as the loop lag (bench/bench_store.py reports it properly).
    """
    async with open_store(tmp_path / "t.db", data_dir=tmp_path) as astore:
        await astore.append(ev.BotCreated("mira", "Mira", ""), ev.ChatCreated("c1", "T", "mira"))
        first = await astore.append(ev.UserTurn("c1", "First.", said("First.")))
        turns_during_append, lag_append, result = await watch_loop(
            lambda: astore.append(
                *(ev.UserTurn("c1", f"Line {n}.", said("x")) for n in range(5000))
            )
        )
        assert len(result.ids) == 5000
        turns_during_rewind, lag_rewind, _ = await watch_loop(
            lambda: astore.run(Store.rewind, "c1", first.ids[0])
        )
        assert await astore.run(lambda s: len(s.timeline("c1"))) == 1
    print(f"loop lag: {lag_append * 1000:.2f} ms appending, {lag_rewind * 1000:.2f} ms rewinding")
    assert turns_during_append > 3 and turns_during_rewind > 3


async def test_queued_writes_share_one_transaction_and_fail_alone(place: Where) -> None:
    async with open_store(target(place)) as astore:
        await astore.append(ev.BotCreated("mira", "Mira", ""), ev.ChatCreated("c1", "T", "mira"))
        gate = threading.Event()
        results: dict[int, Any] = {}

        async def write(n: int) -> None:
            chat = "nope" if n == 3 else "c1"  # one bad write among them
            try:
                results[n] = (await astore.append(ev.UserTurn(chat, f"Line {n}.", said("x")))).ids
            except NotFound as exc:
                results[n] = exc

        async with trio.open_nursery() as nursery:
            # The store's thread waits on the gate while the writes queue up behind it.
            nursery.start_soon(astore.run, lambda _s: gate.wait(10))
            await trio.testing.wait_all_tasks_blocked()
            for n in range(8):
                nursery.start_soon(write, n)
                await trio.testing.wait_all_tasks_blocked()
            gate.set()
        stats = astore.statistics()
        assert stats["group_commits"] == 1 and stats["grouped_writes"] == 8
        assert isinstance(results[3], NotFound)
        ids = [results[n][0] for n in range(8) if n != 3]
        assert ids == sorted(set(ids))  # in the order they were queued
        lines = [t.text for t in await astore.run(Store.timeline, "c1")]
        assert lines == [f"Line {n}." for n in range(8) if n != 3]
