"""A turn cancelled the instant it is sent, over the real openai backend, wedges nothing.

The engine runs on a real database file with the real ``openai`` backend,
talking real HTTP to the test server on 127.0.0.1 with a cap of two
connections. Each cancel lands before the beat's stream opens, which is the
moment a slot used to leak; after more such pairs than there are slots, a turn
in another chat must still stream and settle, and every slot must be free.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import trio

from actors import Engine, EngineSettings, open_engine
from llm import LimiterStatistics, ModelSettings, OpenAIBackend, Timeouts
from protocol import BeatComplete, ChatState, Token, TurnSettled

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.support.openai_server import OpenAIServer, run_openai_server

PAIRS = 8
CAP = 2
WAIT = 10.0  # seconds: far more than a turn against the loopback server takes


@pytest.fixture
async def server() -> AsyncIterator[OpenAIServer]:
    async with run_openai_server() as running:
        yield running


@pytest.fixture
async def engine(tmp_path: Path, server: OpenAIServer) -> AsyncIterator[Engine]:
    narrative = ModelSettings(
        backend="openai",
        base_url=server.url,
        model="test-model",
        max_connections=CAP,
        timeouts=Timeouts(connect=2, first_token=5, stall=5, total=20),
    )
    settings = EngineSettings(
        db_path=tmp_path / "troupe.db",
        data_dir=tmp_path,
        narrative=narrative,
        classifier_timeout=5,
        shutdown_timeout=2,
    )
    async with open_engine(settings) as running:
        yield running


async def new_chat(engine: Engine, name: str) -> str:
    bot = await engine.create_bot(name, "keeps the bar", "")
    return (await engine.create_chat(bot.id)).id


def slots(engine: Engine) -> LimiterStatistics:
    backend = engine.svc.narrative
    assert isinstance(backend, OpenAIBackend)
    return backend.limiter.statistics()


async def test_instant_cancels_leak_no_slot_and_the_next_turn_streams(
    engine: Engine, server: OpenAIServer
) -> None:
    server.script.text = "Mira squints at the key."
    server.script.first_delay = 60.0  # a cancel that comes late still finds no text
    first = await new_chat(engine, "Mira")
    async with engine.watch(first) as messages:
        assert isinstance(await messages.__anext__(), ChatState)
        for pair in range(PAIRS):
            await engine.send_turn(first, "Hello")
            await engine.cancel(first)
            with trio.fail_after(WAIT):
                ended = await next_of(messages, BeatComplete)
                await next_of(messages, TurnSettled)
            assert ended.truncated and ended.error == "cancelled", pair
    opened = sum(1 for body in server.requests if body.get("stream"))
    assert PAIRS - opened > CAP, f"only {PAIRS - opened} cancels came before the stream opened"
    server.script.first_delay = 0.0

    other = await new_chat(engine, "Tobias")
    seen: list[Any] = []
    async with engine.watch(other) as messages:
        assert isinstance(await messages.__anext__(), ChatState)
        await engine.send_turn(other, "Hello")
        with trio.move_on_after(WAIT):
            async for message in messages:
                seen.append(message)
                if isinstance(message, TurnSettled):
                    break
    tokens = "".join(m.text for m in seen if isinstance(m, Token))
    assert seen and isinstance(seen[-1], TurnSettled), (
        f"after {PAIRS} instant cancels the next turn did not settle within {WAIT:.0f} s "
        f"({len(tokens)} characters streamed); slots: {slots(engine)}"
    )
    assert tokens == "Mira squints at the key."
    with trio.fail_after(WAIT):
        await engine.idle()
    assert slots(engine).in_use == 0


async def next_of(messages: AsyncIterator[Any], kind: type) -> Any:
    async for message in messages:
        if isinstance(message, kind):
            return message
    raise AssertionError(f"the watch ended before a {kind.__name__}")
