"""The engine on the real embedded model: a classifier whose worker dies takes its default.

Cancels in a row and a worker killed mid-beat are driven over real WebSockets
in tests/web/test_local_gateway.py.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from actors import Budgets, Engine, EngineSettings, open_engine
from llm import (
    ClassifierRequest,
    LocalBackend,
    Message,
    ModelLength,
    ModelSettings,
    NarrativeRequest,
)

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


async def one_token_beat(local: LocalBackend) -> int:
    """Run a beat capped at one token; the tokens the worker sent.

    At its cap the beat ends with ``ModelLength``, its one token held back
    (it is no whole word yet).
    """
    before = local.statistics().tokens
    warm = NarrativeRequest((Message("user", "Hello.", "Ana"),), "Mira", max_tokens=1)
    with contextlib.suppress(ModelLength):
        async with local.stream(warm) as chunks:
            async for _text in chunks:
                pass
    return local.statistics().tokens - before


async def test_a_classifier_whose_worker_dies_falls_back_to_its_default(
    engine: Engine, local: LocalBackend
) -> None:
    # A one-token beat starts the worker, so the classifier call below is in it at once.
    assert await one_token_beat(local) == 1
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
    assert await one_token_beat(local) == 1
    assert local.statistics().restarts == 1


async def test_a_warm_exchange_moves_affinity_up_on_the_embedded_model(
    engine: Engine, local: LocalBackend
) -> None:
    """The real engine on the real model: Mira likes the person more after a kind turn.

    The embedded model cannot judge this (docs/models.md), so the engine judges the
    passes by rules here; the chat's own settings shorten its beats.
    """
    from protocol import ChatSettings, ChatState, TurnSettled

    await engine.set_you("Wren", "a cartographer")
    chat_id = await make_chat(engine)
    await engine.update_chat_settings(chat_id, ChatSettings(max_tokens=24))
    warm = ('*I smile.* "Thank you, Mira, you are so kind. You are a true friend."',)
    async with engine.watch(chat_id) as messages:
        await until(messages, ChatState)
        for prose in warm:
            await engine.send_turn(chat_id, prose)
            with trio.fail_after(300):
                await until(messages, TurnSettled)
    state = await engine.chat_state(chat_id)
    mira = state.chat.host_bot_id
    edge = next(e for e in state.edges if (e.source_id, e.target_id) == (mira, "you"))
    assert edge.affinity > 50 and edge.trust > 50
    pool = engine.statistics()["classifier_pool"]
    assert isinstance(pool, dict) and "state_update" not in pool["by_name"]
    assert local.statistics().tokens <= 24  # the chat's max_tokens, not the engine's 40
