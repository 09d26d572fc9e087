"""The connection cap: three priorities, and cancelled at every await point it never
leaks or wedges a slot."""

from __future__ import annotations

import attrs
import pytest
import trio
import trio.testing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llm import (
    ClassifierRequest,
    LimiterStatistics,
    Priority,
    PriorityLimiter,
    classifier_priority,
)
from llm._limit import priority_of


@attrs.define
class Worker:
    """A task that takes a slot, holds it until told, and gives it back."""

    level: Priority | bool
    """A priority, or the two-level spelling (``True`` narrative, ``False`` background)."""
    scope: trio.CancelScope = attrs.Factory(trio.CancelScope)
    finish: trio.Event = attrs.Factory(trio.Event)
    state: str = "new"  # new -> waiting -> holding -> done

    async def run(self, limiter: PriorityLimiter, granted: list[Worker] | None = None) -> None:
        with self.scope:
            self.state = "waiting"
            try:
                async with limiter.slot(self.level):
                    self.state = "holding"
                    if granted is not None:
                        granted.append(self)
                    await self.finish.wait()
            finally:
                self.state = "done"


async def settle() -> None:
    await trio.testing.wait_all_tasks_blocked()


def waiting(limiter: PriorityLimiter) -> int:
    stats = limiter.statistics()
    return stats.waiting_urgent + stats.waiting_critical + stats.waiting_background


@pytest.mark.parametrize("full", [False, True])
async def test_an_already_cancelled_caller_takes_nothing(full: bool) -> None:
    limiter = PriorityLimiter(1)
    if full:
        await limiter.acquire(urgent=True)
    with trio.CancelScope() as scope:
        scope.cancel()
        await limiter.acquire(urgent=True)
        pytest.fail("acquire returned to a cancelled caller")
    assert scope.cancelled_caught
    assert limiter.statistics() == LimiterStatistics(
        in_use=1 if full else 0, capacity=1, waiting_urgent=0, waiting_background=0
    )


async def test_the_slot_context_of_an_already_cancelled_caller_leaks_nothing() -> None:
    limiter = PriorityLimiter(2)
    for _ in range(5):
        with trio.CancelScope() as scope:
            scope.cancel()
            async with limiter.slot(urgent=True):
                pytest.fail("the block ran for a cancelled caller")
    assert limiter.in_use == 0
    async with limiter.slot(urgent=False):
        assert limiter.in_use == 1


async def test_acquire_is_a_checkpoint_on_the_free_path_and_the_taken_slot_survives_it() -> None:
    limiter = PriorityLimiter(1)
    with trio.testing.assert_checkpoints():
        await limiter.acquire(urgent=False)
    assert limiter.in_use == 1
    limiter.release()
    assert limiter.in_use == 0


async def test_cancelled_while_waiting_leaves_the_queue_and_takes_no_slot() -> None:
    limiter = PriorityLimiter(1)
    holder, waiter = Worker(True), Worker(False)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(holder.run, limiter)
        await settle()
        nursery.start_soon(waiter.run, limiter)
        await settle()
        assert limiter.statistics().waiting_background == 1
        waiter.scope.cancel()
        await settle()
        assert waiter.state == "done" and waiter.scope.cancelled_caught
        assert waiting(limiter) == 0 and limiter.in_use == 1
        holder.finish.set()
    assert limiter.in_use == 0


@pytest.mark.parametrize("cancel_first", [False, True])
@pytest.mark.parametrize(
    ("first_level", "second_level"),
    [
        (True, False),
        (Priority.NARRATIVE, Priority.CRITICAL),
        (Priority.CRITICAL, Priority.BACKGROUND),
        (Priority.BACKGROUND, Priority.BACKGROUND),
    ],
)
async def test_a_waiter_cancelled_as_the_slot_is_handed_over_passes_it_on(
    cancel_first: bool, first_level: Priority | bool, second_level: Priority | bool
) -> None:
    limiter = PriorityLimiter(1)
    await limiter.acquire(urgent=True)  # the test holds the one slot itself
    first, second = Worker(first_level), Worker(second_level)
    granted: list[Worker] = []
    async with trio.open_nursery() as nursery:
        for worker in (first, second):
            nursery.start_soon(worker.run, limiter, granted)
            await settle()
        assert waiting(limiter) == 2
        # Both in one step, before ``first`` runs again: in either order, ``first``
        # must neither keep the slot nor lose it.
        if cancel_first:
            first.scope.cancel()
            limiter.release()
        else:
            limiter.release()
            first.scope.cancel()
        await settle()
        assert first.state == "done" and first.scope.cancelled_caught
        assert granted == [second] and second.state == "holding"
        assert limiter.statistics().in_use == 1 and waiting(limiter) == 0
        second.finish.set()
    assert limiter.in_use == 0


N, C, B = Priority.NARRATIVE, Priority.CRITICAL, Priority.BACKGROUND


@pytest.mark.parametrize(
    ("holder_level", "levels", "order", "waiters"),
    [
        # Two levels, the old spelling: urgent before background.
        (True, [False, True, False, True], [1, 3, 0, 2], (2, 0, 2)),
        # Three: narrative, then critical classifier calls, then background ones.
        (B, [B, C, N, B, C, N], [2, 5, 1, 4, 0, 3], (2, 2, 2)),
    ],
)
async def test_urgent_waiters_go_before_background_ones_each_in_arrival_order(
    holder_level: Priority | bool,
    levels: list[Priority | bool],
    order: list[int],
    waiters: tuple[int, int, int],
) -> None:
    limiter = PriorityLimiter(1)
    holder = Worker(holder_level)
    queue = [Worker(level) for level in levels]
    granted: list[Worker] = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(holder.run, limiter, granted)
        await settle()
        for worker in queue:
            nursery.start_soon(worker.run, limiter, granted)
            await settle()
        stats = limiter.statistics()
        assert (stats.waiting_urgent, stats.waiting_critical, stats.waiting_background) == waiters
        expected = [holder, *(queue[i] for i in order)]
        for worker in expected:
            assert granted[-1] is worker and limiter.in_use == 1
            worker.finish.set()
            await settle()
    assert granted == expected
    assert limiter.in_use == 0 and waiting(limiter) == 0


async def test_a_critical_caller_arriving_later_overtakes_waiting_background_ones() -> None:
    limiter = PriorityLimiter(2)
    holders = [Worker(N), Worker(N)]
    granted: list[Worker] = []
    async with trio.open_nursery() as nursery:
        for worker in holders:
            nursery.start_soon(worker.run, limiter, granted)
        await settle()
        background = [Worker(B) for _ in range(3)]
        for worker in background:  # one at a time: trio runs a batch in no set order
            nursery.start_soon(worker.run, limiter, granted)
            await settle()
        critical = Worker(C)
        nursery.start_soon(critical.run, limiter, granted)
        await settle()
        holders[0].finish.set()
        await settle()
        assert granted[-1] is critical  # the background ones came first and still wait
        assert limiter.statistics().waiting_background == 3
        for worker in [holders[1], critical, *background]:  # one at a time, as they come
            worker.finish.set()
            await settle()
    assert granted[3:] == background and limiter.in_use == 0


@pytest.mark.parametrize("level", list(Priority))
async def test_every_level_takes_a_free_slot_at_a_checkpoint_and_a_cancelled_one_takes_none(
    level: Priority,
) -> None:
    limiter = PriorityLimiter(1)
    with trio.CancelScope() as scope:
        scope.cancel()
        async with limiter.slot(level):
            pytest.fail("the block ran for a cancelled caller")
    assert limiter.in_use == 0
    with trio.testing.assert_checkpoints():
        await limiter.acquire(level)
    assert limiter.in_use == 1
    limiter.release()


def test_a_classifier_request_picks_its_own_priority() -> None:
    assert classifier_priority(ClassifierRequest("addressee", (), critical=True)) is C
    assert classifier_priority(ClassifierRequest("significance", ())) is B
    assert (priority_of(True), priority_of(False), priority_of(C)) == (N, B, C)


async def test_releasing_more_than_was_taken_is_an_error() -> None:
    limiter = PriorityLimiter(1)
    with pytest.raises(RuntimeError, match="released more often"):
        limiter.release()


# Every interleaving of starting, cancelling and finishing workers, with the
# driver stepping one scheduling batch ("step") or until all is quiet ("settle")
# between actions, so cancels land at every await point of acquire and release.
ACTIONS = st.lists(
    st.one_of(
        st.tuples(st.just("start"), st.one_of(st.booleans(), st.sampled_from(Priority))),
        st.tuples(st.just("cancel"), st.integers(0, 7)),
        st.tuples(st.just("finish"), st.integers(0, 7)),
        st.tuples(st.just("step"), st.just(0)),
        st.tuples(st.just("settle"), st.just(0)),
    ),
    max_size=40,
)


def check(limiter: PriorityLimiter, workers: list[Worker]) -> None:
    """What must hold whenever every task is blocked."""
    stats = limiter.statistics()
    holding = [w for w in workers if w.state == "holding"]
    parked = [w for w in workers if w.state == "waiting"]
    assert stats.in_use == len(holding) <= stats.capacity
    levels = [priority_of(w.level) for w in parked]
    assert stats.waiting_urgent == levels.count(Priority.NARRATIVE)
    assert stats.waiting_critical == levels.count(Priority.CRITICAL)
    assert stats.waiting_background == levels.count(Priority.BACKGROUND)
    if parked:  # nobody waits while a slot lies idle
        assert stats.in_use == stats.capacity


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(capacity=st.integers(1, 3), actions=ACTIONS)
def test_no_interleaving_of_cancels_leaks_or_wedges_a_slot(
    capacity: int, actions: list[tuple[str, object]]
) -> None:
    async def main() -> None:
        limiter = PriorityLimiter(capacity)
        workers: list[Worker] = []
        async with trio.open_nursery() as nursery:
            for kind, arg in actions:
                if kind == "start":
                    assert isinstance(arg, (bool, Priority))
                    worker = Worker(arg)
                    workers.append(worker)
                    nursery.start_soon(worker.run, limiter)
                elif kind == "cancel" and workers:
                    workers[int(str(arg)) % len(workers)].scope.cancel()
                elif kind == "finish" and workers:
                    workers[int(str(arg)) % len(workers)].finish.set()
                elif kind == "step":
                    await trio.lowlevel.checkpoint()
                elif kind == "settle":
                    await settle()
                    check(limiter, workers)
            await settle()
            check(limiter, workers)
            # Everyone still there finishes, one at a time: every waiter is served.
            for _ in range(len(workers)):
                for worker in workers:
                    worker.finish.set()
                await settle()
            assert all(w.state == "done" for w in workers)
        assert limiter.statistics().in_use == 0

    trio.run(main)
