"""The record of commands sent with an id: kept with the command's first event, or not at all."""

from __future__ import annotations

import pytest
import trio
from storeworld import said

from protocol import events as ev
from store import (
    AsyncStore,
    CommandRun,
    CommandTaken,
    NotFound,
    Store,
    current_command,
)
from store._tx import transaction


def _turn(chat_id: str, prose: str = "Hello.") -> ev.UserTurn:
    return ev.UserTurn(chat_id, prose, said(prose))


def test_the_first_event_records_the_command_once(store: Store, world: dict[str, str]) -> None:
    run = CommandRun(world["chat"], "k1", "send_turn")
    with store.commanding(run):
        first = store.append(_turn(world["chat"])).ids[0]
        store.append(_turn(world["chat"], "And again."))
    record = store.command_record(world["chat"], "k1")
    assert record is not None
    assert (record.kind, record.first_event_id, record.answer) == ("send_turn", first, None)
    assert run.first_event_id == first
    rows = store.conn.execute("SELECT count(*) FROM commands").fetchall()
    assert rows == [(1,)]

    store.answer_command(world["chat"], "k1", '{"type": "ok"}')
    record = store.command_record(world["chat"], "k1")
    assert record is not None and record.answer == '{"type": "ok"}'


def test_the_key_is_the_chat_and_the_id(store: Store, world: dict[str, str]) -> None:
    with store.commanding(CommandRun(world["chat"], "same", "send_turn")):
        store.append(_turn(world["chat"]))
    with store.commanding(CommandRun("", "same", "create_bot")):
        store.append(ev.BotCreated("lio", "Lio", ""))
    assert store.command_record(world["chat"], "same") is not None
    record = store.command_record("", "same")
    assert record is not None and record.kind == "create_bot"
    assert store.command_record("c999", "same") is None


def test_a_refused_append_records_nothing(store: Store, world: dict[str, str]) -> None:
    before = store.event_count()
    run = CommandRun("c999", "k1", "send_turn")
    with pytest.raises(NotFound), store.commanding(run):
        store.append(_turn("c999"))  # no such chat
    assert store.command_record("c999", "k1") is None
    assert run.first_event_id is None
    assert store.event_count() == before


def test_a_rolled_back_transaction_takes_the_record_with_it(
    store: Store, world: dict[str, str]
) -> None:
    before = store.event_count()
    run = CommandRun(world["chat"], "k1", "send_turn")
    with pytest.raises(RuntimeError), store.commanding(run), transaction(store.conn):
        store.append(_turn(world["chat"]))
        assert store.command_record(world["chat"], "k1") is not None  # inside: there
        raise RuntimeError("the write fails after its first event")
    assert store.command_record(world["chat"], "k1") is None
    assert store.event_count() == before
    assert run.first_event_id is None, "the run forgets what was rolled back"

    with store.commanding(run):  # so a retry records it afresh
        first = store.append(_turn(world["chat"])).ids[0]
    record = store.command_record(world["chat"], "k1")
    assert record is not None and record.first_event_id == first


def test_a_command_another_writer_recorded_is_refused_whole(
    store: Store, world: dict[str, str]
) -> None:
    with store.commanding(CommandRun(world["chat"], "k1", "send_turn")):
        first = store.append(_turn(world["chat"])).ids[0]
    before = store.event_count()
    with pytest.raises(CommandTaken), store.commanding(CommandRun(world["chat"], "k1", "x")):
        store.append(_turn(world["chat"], "A second writer."))
    assert store.event_count() == before, "its event went with the refusal"
    record = store.command_record(world["chat"], "k1")
    assert record is not None and record.first_event_id == first


def test_rewind_and_rebuild_keep_the_record(store: Store, world: dict[str, str]) -> None:
    kept = store.append(_turn(world["chat"], "Before.")).ids[0]
    with store.commanding(CommandRun(world["chat"], "k1", "send_turn")):
        store.append(_turn(world["chat"], "After."))
    store.rewind(world["chat"], kept)
    store.rebuild()
    assert store.command_record(world["chat"], "k1") is not None


def test_without_a_command_nothing_is_recorded(store: Store, world: dict[str, str]) -> None:
    store.append(_turn(world["chat"]))
    assert store.conn.execute("SELECT count(*) FROM commands").fetchall() == [(0,)]


async def test_the_async_store_takes_the_command_from_the_caller(
    store: Store, world: dict[str, str]
) -> None:
    astore = AsyncStore(store)
    try:
        run = CommandRun(world["chat"], "k1", "send_turn")
        token = current_command.set(run)
        try:
            # Two writes queued together share one transaction, each in its savepoint.
            async with trio.open_nursery() as nursery:
                nursery.start_soon(astore.append, _turn(world["chat"]))
                nursery.start_soon(astore.append, _turn(world["chat"], "Twice."))
        finally:
            current_command.reset(token)
        await astore.append(_turn(world["chat"], "No command now."))
        rows = await astore.run(
            lambda s: s.conn.execute("SELECT first_event_id FROM commands").fetchall()
        )
        assert rows == [(run.first_event_id,)]
        assert store.command is None, "the store forgets the command after each call"
    finally:
        astore._worker.stop()
