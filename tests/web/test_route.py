"""Commands forwarded to their chat's owner run as the origin's connection would run them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import protocol as p
from actors import Engine, EngineSettings, open_engine
from llm import ScriptedBackend
from store import Store
from web import chat_of, run_forwarded


@pytest.fixture
def backend() -> ScriptedBackend:
    return ScriptedBackend()


@pytest.fixture
async def engine(tmp_path: Path, backend: ScriptedBackend) -> AsyncIterator[Engine]:
    settings = EngineSettings(db_path=tmp_path / "troupe.db", data_dir=tmp_path)
    async with open_engine(settings, narrative=backend, classifier=backend) as running:
        yield running


def frame(message: p.ClientMessage, id: str) -> p.Envelope:
    return p.decode_client(p.encode_client(message, id))


async def test_a_forwarded_turn_runs_as_the_seat_it_came_with(
    engine: Engine, backend: ScriptedBackend
) -> None:
    mira = await engine.create_bot("Mira", "barkeep", "")
    chat = await engine.create_chat(mira.id, None, "The Eel")
    wren = await engine.create_persona("Wren", "a courier")
    seated = await run_forwarded(engine, frame(p.TakeSeat(chat.id, wren.id), "1"), p.YOU_ID)
    assert seated.seat == wren.id
    backend.push_narrative("Mira nods.")
    routed = await run_forwarded(engine, frame(p.SendTurn(chat.id, "Evening."), "2"), wren.id)
    assert isinstance(routed.answer, p.Accepted) and routed.seat == wren.id
    await engine.wait_settled(chat.id)
    turn = await engine.store.run(Store.get_event, routed.answer.user_turn_id)
    assert turn is not None and getattr(turn.event, "person_id", None) == wren.id


async def test_a_refusal_on_the_owner_is_the_clients_refusal(engine: Engine) -> None:
    before = await engine.store.run(Store.event_count)
    with pytest.raises(p.ProtocolError) as refused:
        await run_forwarded(engine, frame(p.SendTurn("c404", "Hello?"), "3"), p.YOU_ID)
    assert refused.value.code == "not_found"
    assert await engine.store.run(Store.event_count) == before


def test_reading_a_chat_stays_on_the_clients_node() -> None:
    assert chat_of(p.OpenChat("c1")) is None
    assert chat_of(p.CloseChat("c1")) is None
    assert chat_of(p.LoadOlder("c1", 5, 10)) is None
    assert chat_of(p.SendTurn("c1", "Hi.")) == "c1"
    assert chat_of(p.ListBots()) is None
