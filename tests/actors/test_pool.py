"""The classifier pool: one timeout for the wait and the call, a default, never a hang,
and the backend's one cap deciding who goes first."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import trio
import trio.testing

from actors import Engine
from actors._pool import ClassifierPool
from llm import (
    ClassifierRequest,
    Message,
    ModelSettings,
    NarrativeRequest,
    OpenAIBackend,
    Priority,
    ScriptedBackend,
    Timeouts,
)
from tests.support.openai_server import OpenAIServer, run_openai_server

SCHEMA = {"type": "object", "required": ["score"], "properties": {"score": {"type": "integer"}}}


def request(name: str = "significance", critical: bool = False) -> ClassifierRequest:
    return ClassifierRequest(name, (Message("user", name),), SCHEMA, critical=critical)


def score(raw: object) -> int:
    assert isinstance(raw, dict)
    return int(raw["score"])


def cap(pool: ClassifierPool) -> tuple[object, ...]:
    stats = pool.statistics()
    keys = ("in_use", "capacity", "waiting_urgent", "waiting_critical", "waiting_background")
    return tuple(stats[key] for key in keys)


async def test_a_wait_for_the_backends_slot_counts_against_the_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    backend = ScriptedBackend(capacity=1)
    backend.push_classifier("significance", {"score": 2}, keep=True)
    assert backend.limiter is not None
    pool = ClassifierPool(backend, timeout=2.0)
    # A beat holds the only slot for far longer than the timeout.
    await backend.limiter.acquire(Priority.NARRATIVE)
    started = trio.current_time()
    with trio.fail_after(100):  # turns a hang into a failure; the default comes first
        assert await pool.classify(request(), score, -1) == -1
    assert trio.current_time() - started == pytest.approx(2.0)
    assert backend.requests == []  # it never got a slot
    assert pool.statistics()["timeouts"] == 1 and cap(pool) == (1, 1, 0, 0, 0)
    backend.limiter.release()
    # A wait shorter than the timeout still gets the answer.
    await backend.limiter.acquire(Priority.NARRATIVE)
    answer: list[int] = []

    async def ask() -> None:
        answer.append(await pool.classify(request(critical=True), score, -1))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(ask)
        await trio.sleep(1.5)
        assert cap(pool) == (1, 1, 0, 1, 0)  # the critical call waits on the backend's cap
        backend.limiter.release()
    assert answer == [2]
    assert cap(pool) == (0, 1, 0, 0, 0)
    assert (pool.statistics()["calls"], pool.statistics()["critical"]) == (2, 1)


async def test_a_stalled_call_yields_the_default_within_the_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    backend, pool = stalling(capacity=2, timeout=3.0)
    started = trio.current_time()
    results: list[int] = []
    async with trio.open_nursery() as nursery:
        for _ in range(5):  # three of them queue for a slot
            nursery.start_soon(_append, results, pool)
    assert results == [-1] * 5
    assert trio.current_time() - started == pytest.approx(3.0)
    assert len(backend.requests) == 2  # the three queued ones never reached the model
    assert pool.statistics()["timeouts"] == 5 and cap(pool) == (0, 2, 0, 0, 0)


def stalling(capacity: int, timeout: float) -> tuple[ScriptedBackend, ClassifierPool]:
    """A capped backend whose every classifier call hangs, and a pool over it."""
    backend = ScriptedBackend(capacity=capacity)
    backend.push_classifier("significance", stall=True, keep=True)
    return backend, ClassifierPool(backend, timeout=timeout)


async def _append(results: list[int], pool: ClassifierPool) -> None:
    results.append(await pool.classify(request(), score, -1))


async def test_a_closed_pool_yields_the_default_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    backend, pool = stalling(capacity=1, timeout=30.0)
    results: list[int] = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_append, results, pool)  # stalls in the backend
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(_append, results, pool)  # waits for the backend's slot
        await trio.testing.wait_all_tasks_blocked()
        assert cap(pool) == (1, 1, 0, 0, 1)
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
    pool = ClassifierPool(backend, timeout=5.0)
    assert [await pool.classify(request(), score, -1) for _ in range(3)] == [-1, -1, 1]
    stats = pool.statistics()
    assert (stats["calls"], stats["failures"], stats["by_name"]) == (3, 2, {"significance": 3})
    # A backend with no cap of its own: the calls in flight, and no capacity.
    assert cap(pool) == (0, None, 0, 0, 0)
    with pytest.raises(ValueError, match="positive"):
        ClassifierPool(backend, timeout=0)


async def test_the_backend_serves_beats_then_critical_passes_then_background_ones(
    autojump_clock: trio.testing.MockClock,
) -> None:
    backend = ScriptedBackend(capacity=1)
    backend.push_narrative("Evening.", keep=True)
    for name in ("addressee", "significance", "significance-2"):
        backend.push_classifier(name, {"score": 1}, keep=True)
    assert backend.limiter is not None
    pool = ClassifierPool(backend, timeout=60.0)
    await backend.limiter.acquire(Priority.NARRATIVE)  # held until everyone queues
    served: list[str] = []

    async def classify(name: str, critical: bool) -> None:
        await pool.classify(request(name, critical), score, -1)
        served.append(name)

    async def beat() -> None:
        async with backend.stream(NarrativeRequest((), speaker="Mira")) as chunks:
            async for _ in chunks:
                pass
        served.append("beat")

    async with trio.open_nursery() as nursery:
        for job in (
            lambda: classify("significance", False),
            lambda: classify("significance-2", False),
            lambda: classify("addressee", True),
            beat,
        ):
            nursery.start_soon(job)
            await trio.testing.wait_all_tasks_blocked()
        assert cap(pool) == (1, 1, 1, 1, 2)
        backend.limiter.release()
    assert served == ["beat", "addressee", "significance", "significance-2"]


@pytest.fixture
async def server() -> AsyncIterator[OpenAIServer]:
    async with run_openai_server() as running:
        yield running


async def test_through_the_openai_backend_a_waiting_beat_overtakes_queued_passes(
    server: OpenAIServer,
) -> None:
    server.script.content = '{"score": 4}'
    server.script.classifier_delay = 0.2  # each pass holds the one connection a while
    model = OpenAIBackend(
        ModelSettings(
            backend="openai",
            base_url=server.url,
            model="test-model",
            max_connections=1,
            timeouts=Timeouts(connect=5, first_token=5, stall=5, total=30),
        )
    )
    pool = ClassifierPool(model, timeout=30.0)
    served: list[str] = []

    async def classify(name: str, critical: bool = False) -> None:
        assert await pool.classify(request(name, critical), score, -1) == 4
        served.append(name)

    async def beat() -> None:
        text = []
        async with model.stream(NarrativeRequest((Message("user", "hi"),), "Mira")) as chunks:
            async for chunk in chunks:
                text.append(chunk)
        assert "".join(text) == server.script.text
        served.append("beat")

    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(classify, "significance-1")
            with trio.fail_after(10):
                await server.requested.wait()  # the first pass holds the connection
            for job in (
                lambda: classify("significance-2"),
                lambda: classify("significance-3"),
                lambda: classify("addressee", True),
                beat,
            ):
                nursery.start_soon(job)
                await trio.testing.wait_all_tasks_blocked()
            assert cap(pool) == (1, 1, 1, 1, 2)
    finally:
        await model.aclose()
    assert served == ["significance-1", "beat", "addressee", "significance-2", "significance-3"]
    names = [
        body.get("stream", False) or body["messages"][-1]["content"] for body in server.requests
    ]
    assert names == ["significance-1", True, "addressee", "significance-2", "significance-3"]


async def test_a_turn_asks_every_pass_as_critical_and_scores_significance_in_the_background(
    engine: Engine, backend: ScriptedBackend
) -> None:
    mira = await engine.create_bot("Mira", "barkeep", "")
    tobias = await engine.create_bot("Tobias", "lamplighter", "")
    chat_id = (await engine.create_chat(mira.id, tobias.id, "The Eel")).id
    backend.push_narrative("Mira squints at the key.", keep=True)
    backend.push_classifier("significance", 3, keep=True)
    await engine.send_turn(chat_id, '"Recognise this key, anyone?"')
    await engine.wait_settled(chat_id)
    await engine.idle()  # the significance worker has scored what the turn remembered
    asked = [r for r in backend.requests if isinstance(r, ClassifierRequest)]
    critical = {r.name for r in asked if r.critical}
    background = {r.name for r in asked if not r.critical}
    assert {"state_update", "interjection"} <= critical  # how relations moved, who speaks up
    assert background == {"significance"}  # nobody waits on it
