"""Queries look at one chat through an index: other chats and long histories cost nothing.

Work is counted in SQLite virtual-machine steps (a progress handler called on
every step), which is exact and repeatable, unlike a timing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from storeworld import add_chat, exchange, said

from protocol import events as ev
from store import Store


def vm_steps(store: Store, query: Callable[[], Any]) -> tuple[int, Any]:
    """How many SQLite VM steps ``query`` took, and its result."""
    steps = 0

    def count() -> bool:
        nonlocal steps
        steps += 1
        return False  # go on

    store.conn.set_progress_handler(count, 1)
    try:
        result = query()
    finally:
        store.conn.set_progress_handler(None)
    return steps, result


def chatter(store: Store, chat_id: str, turns: int) -> None:
    for start in range(0, turns, 500):
        count = min(500, turns - start)
        store.append(
            *(ev.UserTurn(chat_id, f"Line {start + n}.", said("x")) for n in range(count))
        )


@pytest.mark.sqlite_only  # counts SQLite's own VM steps and plans
def test_recent_dialogue_is_not_starved_by_another_chat(
    store: Store, world: dict[str, str]
) -> None:
    quiet, mira = world["chat"], world["mira"]
    busy, _ = add_chat(store, world["tam"])
    for n in range(3):
        exchange(store, quiet, mira, f"Quiet {n}.", f"Reply {n}.")
    before, expected = vm_steps(store, lambda: store.recent_dialogue(quiet, 20))

    chatter(store, busy, 10_000)

    after, turns = vm_steps(store, lambda: store.recent_dialogue(quiet, 20))
    assert turns == expected
    assert [t.text for t in turns] == [
        "Quiet 0.",
        "Reply 0.",
        "Quiet 1.",
        "Reply 1.",
        "Quiet 2.",
        "Reply 2.",
    ]
    assert after <= before + 20, f"{before} steps before, {after} with 10k rows elsewhere"


@pytest.mark.sqlite_only  # counts SQLite's own VM steps and plans
def test_recent_dialogue_is_flat_in_the_chat_s_own_history(
    store: Store, world: dict[str, str]
) -> None:
    chat = world["chat"]
    chatter(store, chat, 40)
    short, _ = vm_steps(store, lambda: store.recent_dialogue(chat, 20))
    chatter(store, chat, 10_000)
    long, turns = vm_steps(store, lambda: store.recent_dialogue(chat, 20))
    assert [t.text for t in turns] == [f"Line {n}." for n in range(9980, 10_000)]
    assert long <= short + 20, f"{short} steps at 40 turns, {long} at 10,040"


def test_recent_dialogue_can_start_after_an_event(store: Store, world: dict[str, str]) -> None:
    chat, mira = world["chat"], world["mira"]
    exchange(store, chat, mira, "Before.", "Before too.")
    entered, _, _ = exchange(store, chat, mira, "Guest enters.", "Hello guest.")
    turns = store.recent_dialogue(chat, 10, after_event_id=entered - 1)
    assert [t.text for t in turns] == ["Guest enters.", "Hello guest."]
    assert [t.text for t in store.recent_dialogue(chat, 1)] == ["Hello guest."]


def plan(store: Store, sql: str, *args: object) -> str:
    rows = store.conn.execute("EXPLAIN QUERY PLAN " + sql, args).fetchall()
    return " | ".join(str(row[-1]) for row in rows)


@pytest.mark.sqlite_only  # counts SQLite's own VM steps and plans
def test_the_hot_queries_use_their_indexes(store: Store) -> None:
    recent = plan(
        store,
        "SELECT * FROM timeline WHERE chat_id = ? AND event_id > ? ORDER BY event_id DESC LIMIT ?",
        "c1",
        0,
        20,
    )
    assert "PRIMARY KEY (chat_id=? AND event_id>?)" in recent and "TEMP B-TREE" not in recent
    assert "event_log_chat" in plan(
        store, "SELECT kind FROM event_log WHERE chat_id = ? AND id > ?", "c1", 5
    )
    assert "event_log_kind" in plan(store, "SELECT id FROM event_log WHERE kind = ?", "x")
    assert "memories_bot" in plan(
        store, "SELECT * FROM memories WHERE bot_id = ? AND chat_id = ? ORDER BY id", "m", "c1"
    )
    assert "world_events_chat" in plan(
        store, "SELECT * FROM world_events WHERE chat_id = ? AND status IN ('active')", "c1"
    )
    assert "inventory_holder" in plan(store, "SELECT * FROM inventory WHERE holder_id = ?", "y")


@pytest.mark.sqlite_only  # counts SQLite's own VM steps and plans
def test_a_page_of_the_latest_turns_costs_the_same_in_a_long_chat(
    store: Store, world: dict[str, str]
) -> None:
    short, _ = add_chat(store, world["mira"])
    long, _ = add_chat(store, world["mira"])
    chatter(store, short, 300)
    chatter(store, long, 6000)
    for chat_id, turns in ((short, 300), (long, 6000)):
        newest, older = store.latest_turns(chat_id, 100)
        assert older and len(newest) == 100
        assert [t.text for t in newest] == [f"Line {n}." for n in range(turns - 100, turns)]
    steps_short, _ = vm_steps(store, lambda: store.latest_turns(short, 100))
    steps_long, _ = vm_steps(store, lambda: store.latest_turns(long, 100))
    assert steps_long == steps_short
    before = store.latest_turns(long, 100)[0][0].event_id
    steps_page, (page, more) = vm_steps(store, lambda: store.latest_turns(long, 200, before))
    assert more and len(page) == 200 and page[-1].event_id < before
    assert steps_page < 3 * steps_short


@pytest.mark.sqlite_only  # counts SQLite's own VM steps and plans
def test_the_latest_turns_walk_the_chat_s_key_without_a_scan_or_a_sort(
    store: Store, world: dict[str, str]
) -> None:
    chat_id = world["chat"]
    chatter(store, chat_id, 50)
    statements: list[tuple[str, Any]] = []

    def trace(_cursor: Any, sql: str, bindings: Any) -> bool:
        statements.append((sql, bindings))
        return True

    store.conn.exec_trace = trace
    try:
        store.latest_turns(chat_id, 10)
        store.latest_turns(chat_id, 10, 30)
    finally:
        store.conn.exec_trace = None
    assert len(statements) == 2
    for sql, bindings in statements:
        shown = plan(store, sql, *bindings)
        assert "SEARCH timeline USING PRIMARY KEY (chat_id=?" in shown, shown
        assert "SCAN" not in shown and "TEMP B-TREE" not in shown, shown
