"""The engine on the real embedded model: cancels, crashes of its worker, and what they cost.

The local backend runs llama.cpp in a worker process and holds its one slot
until the worker says the request is done, so a cancelled beat and the
turn's classifier passes never share the model; a worker that dies costs the
request in flight (``model_crashed``) and nothing else.
"""

from __future__ import annotations

import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from actors import Budgets, Engine, EngineSettings, open_engine
from llm import ClassifierRequest, LocalBackend, Message, ModelSettings, NarrativeRequest
from protocol import BeatComplete, Token, TurnSettled

SCORE = {
    "type": "object",
    "properties": {"significance": {"type": "integer", "minimum": 0, "maximum": 3}},
    "required": ["significance"],
}

TELL_ME = '"Tell me everything about the harbour, Mira, from the very beginning."'


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("model-cache")


@pytest.fixture
async def local(cache_dir: Path) -> AsyncIterator[LocalBackend]:
    # One thread: llama.cpp's threads wait for each other by spinning, which
    # costs dearly on a machine busy with other work.
    backend = LocalBackend(ModelSettings(cache_dir=str(cache_dir), threads=1))
    yield backend
    await backend.aclose()


@pytest.fixture
async def engine(tmp_path: Path, local: LocalBackend) -> AsyncIterator[Engine]:
    settings = EngineSettings(
        db_path=tmp_path / "troupe.db",
        data_dir=tmp_path,
        # Greedy, so a beat says the same long thing each run; short prompts and a
        # short classifier timeout keep the passes after each beat quick (most
        # take their defaults, and each of those is a stop the worker acknowledges).
        budgets=Budgets(
            soft=500, hard=800, recent_turns=1, relevant_memories=0, max_tokens=40, temperature=0.0
        ),
        classifier_timeout=0.5,
    )
    async with open_engine(settings, narrative=local, classifier=local) as running:
        yield running


async def make_chat(engine: Engine, name: str = "Mira") -> str:
    bot = await engine.create_bot(name, "keeps the bar at a harbour tavern and loves long tales")
    chat = await engine.create_chat(bot.id, None, "The Eel")
    return chat.id


async def until(messages: AsyncIterator[Any], kind: type) -> Any:
    async for message in messages:
        if isinstance(message, kind):
            return message
    raise AssertionError(f"the watch ended before a {kind.__name__}")


def worker_pid(local: LocalBackend) -> int:
    pid = local.statistics().worker_pid
    assert isinstance(pid, int)
    return pid


async def test_cancel_then_send_again_never_runs_two_completions_at_once(
    engine: Engine, local: LocalBackend
) -> None:
    chat_id = await make_chat(engine)
    endings: list[str | None] = []
    async with engine.watch(chat_id) as messages:
        for round_ in range(8):
            await engine.send_turn(chat_id, f"{TELL_ME} (round {round_})")
            await until(messages, Token)
            # The turn's classifier passes start the moment the beat is cancelled.
            await engine.cancel(chat_id)
            complete = await until(messages, BeatComplete)
            endings.append(complete.error)
            await until(messages, TurnSettled)
    assert all(error in (None, "cancelled") for error in endings), endings
    assert "cancelled" in endings
    stats = local.statistics()
    assert stats.overlaps == 0  # the worker never saw a request while one was unfinished
    assert stats.crashes == 0


async def test_a_worker_killed_mid_beat_costs_that_beat_and_nothing_else(
    engine: Engine, local: LocalBackend
) -> None:
    first = await make_chat(engine)
    second = await make_chat(engine, "Tobias")
    async with engine.watch(first) as one, engine.watch(second) as two:
        await engine.send_turn(first, TELL_ME)
        await until(one, Token)
        # The second chat's beat queues for the model while the first one streams.
        await engine.send_turn(second, TELL_ME)
        os.kill(worker_pid(local), signal.SIGKILL)
        crashed = await until(one, BeatComplete)
        assert crashed.truncated and crashed.error == "model_crashed"
        assert crashed.text.strip()  # what was streamed before the crash is kept
        await until(one, TurnSettled)

        # The other chat carries on from a fresh worker.
        await until(two, Token)
        carried = await until(two, BeatComplete)
        assert carried.error is None and carried.text.strip()
        await until(two, TurnSettled)

        # And the crashed chat's next turn streams.
        await engine.send_turn(first, '"Go on."')
        await until(one, Token)
        again = await until(one, BeatComplete)
        assert again.error is None
        await until(one, TurnSettled)
    stats = local.statistics()
    assert stats.crashes == 1 and stats.restarts == 1
    assert stats.overlaps == 0


async def test_a_classifier_whose_worker_dies_falls_back_to_its_default(
    engine: Engine, local: LocalBackend
) -> None:
    # A one-token beat starts the worker, so the classifier call below is in it at once.
    warm = NarrativeRequest((Message("user", "Hello.", "Ana"),), "Mira", max_tokens=1)
    async with local.stream(warm) as chunks:
        async for _text in chunks:
            pass
    pool = engine.svc.pool
    request = ClassifierRequest(
        "significance",
        (Message("system", "Rate 0 to 3."), Message("user", "Mira reveals her real name.")),
        SCORE,
        max_tokens=24,
    )
    results: list[int] = []

    async def classify() -> None:
        results.append(await pool.classify(request, lambda raw: raw["significance"], -1))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(classify)
        await trio.testing.wait_all_tasks_blocked()
        assert local.statistics().busy  # the request is with the worker
        os.kill(worker_pid(local), signal.SIGKILL)
    assert results == [-1]
    stats = local.statistics()
    assert stats.crashes == 1 and stats.busy is False

    # The next request starts a fresh worker.
    async with local.stream(warm) as chunks:
        assert [text async for text in chunks]
    assert local.statistics().restarts == 1
