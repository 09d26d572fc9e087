"""The classifier pool: one timeout for the wait and the call, and a default, never a hang."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from actors._pool import ClassifierPool
from llm import ClassifierRequest, ScriptedBackend

SCHEMA = {"type": "object", "required": ["score"], "properties": {"score": {"type": "integer"}}}


def request() -> ClassifierRequest:
    return ClassifierRequest("significance", (), SCHEMA)


def score(raw: object) -> int:
    assert isinstance(raw, dict)
    return int(raw["score"])


async def test_a_wait_for_a_slot_counts_against_the_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    backend = ScriptedBackend()
    backend.push_classifier("significance", {"score": 2}, keep=True)
    pool = ClassifierPool(backend, capacity=1, timeout=2.0)
    # Someone else holds the only slot for far longer than the timeout.
    await pool.limiter.acquire(urgent=True)
    started = trio.current_time()
    with trio.fail_after(100):  # turns a hang into a failure; the default comes first
        assert await pool.classify(request(), score, -1) == -1
    assert trio.current_time() - started == pytest.approx(2.0)
    assert backend.requests == []  # it never got a slot
    assert pool.statistics()["timeouts"] == 1
    pool.limiter.release()
    # A wait shorter than the timeout still gets the answer.
    await pool.limiter.acquire(urgent=True)
    answer: list[int] = []

    async def ask() -> None:
        answer.append(await pool.classify(request(), score, -1))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(ask)
        await trio.sleep(1.5)
        pool.limiter.release()
    assert answer == [2]
    assert pool.statistics()["in_use"] == 0


async def test_a_stalled_call_yields_the_default_within_the_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    backend = ScriptedBackend()
    backend.push_classifier("significance", stall=True, keep=True)
    pool = ClassifierPool(backend, capacity=2, timeout=3.0)
    started = trio.current_time()
    results: list[int] = []
    async with trio.open_nursery() as nursery:
        for _ in range(5):  # three of them queue for a slot
            nursery.start_soon(lambda: _append(results, pool))
    assert results == [-1] * 5
    assert trio.current_time() - started == pytest.approx(3.0)
    assert pool.statistics()["timeouts"] == 5 and pool.statistics()["in_use"] == 0


async def _append(results: list[int], pool: ClassifierPool) -> None:
    results.append(await pool.classify(request(), score, -1, critical=False))


async def test_a_closed_pool_yields_the_default_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    backend = ScriptedBackend()
    backend.push_classifier("significance", stall=True, keep=True)
    pool = ClassifierPool(backend, capacity=1, timeout=30.0)
    results: list[int] = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_append, results, pool)  # stalls in the backend
        nursery.start_soon(_append, results, pool)  # waits for the slot
        await trio.testing.wait_all_tasks_blocked()
        closed_at = trio.current_time()
        pool.close()
    assert results == [-1, -1]
    assert trio.current_time() == closed_at  # no waiting at all
    before = len(backend.requests)
    assert await pool.classify(request(), score, -1) == -1
    assert len(backend.requests) == before  # a closed pool calls nobody
    stats = pool.statistics()
    assert (stats["closed"], stats["in_flight"], stats["in_use"], stats["timeouts"]) == (
        True,
        0,
        0,
        0,
    )


async def test_errors_and_bad_output_cost_the_default_only() -> None:
    backend = ScriptedBackend()
    backend.push_classifier("significance", error="the model is down")
    backend.push_classifier("significance", {"score": "three"})
    backend.push_classifier("significance", {"score": 1})
    pool = ClassifierPool(backend, capacity=1, timeout=5.0)
    assert [await pool.classify(request(), score, -1) for _ in range(3)] == [-1, -1, 1]
    stats = pool.statistics()
    assert (stats["calls"], stats["failures"], stats["by_name"]) == (3, 2, {"significance": 3})
    with pytest.raises(ValueError, match="positive"):
        ClassifierPool(backend, capacity=1, timeout=0)
