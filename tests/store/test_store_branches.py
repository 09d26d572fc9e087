"""The world of a chat's current branch is the world its branch's events alone build.

Hypothesis draws sequences of the store property test's moves, with turns,
regenerations (superseding beats and forks), edits, rewinds and switches
among them. Then, for every chat, the events on its current branch's path
(and the world-wide events) are appended to a fresh store, in their order,
with their ids mapped to the new ones; the projected world of each chat
there must equal the one the live store shows.
"""

from __future__ import annotations

import random
import tempfile
from pathlib import Path
from typing import Any

import attrs
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from storeworld import Places, Where, open_store
from test_store_property import MOVES, play

from protocol import events as ev
from protocol import load_event
from store import Store
from store._branches import STRUCTURAL, branch_path, path_sql

ID_FIELDS = (
    "user_turn_id",
    "started_id",
    "supersedes",
    "memory_id",
    "scene_id",
    "world_event_id",
    "source_event_id",
    "event_id",
)


def branch_events(store: Store) -> list[tuple[int, ev.Event]]:
    """The world-wide events and each chat's events on its current path, in log order."""
    chats = [c.id for c in store.list_chats()]
    clauses, args = ["chat_id IS NULL"], []
    for chat_id in chats:
        where, more = path_sql(branch_path(store.conn, chat_id))
        clauses.append(f"(chat_id = ? AND {where})")
        args.extend((chat_id, *more))
    rows = store.conn.execute(
        f"SELECT id, kind, payload FROM event_log WHERE ({' OR '.join(clauses)}) ORDER BY id",
        args,
    ).fetchall()
    return [
        (event_id, load_event(kind, payload))
        for event_id, kind, payload in rows
        if kind == "chat_created" or kind not in STRUCTURAL
    ]


def rebuilt_from_branches(store: Store, where: Where) -> Store:
    """A fresh store given only the current branches' events, ids mapped as they go."""
    fresh = open_store(where)
    # Images are kept beside the log, not in it: the fresh store gets the same ones.
    blobs = store.conn.execute("SELECT sha256, media_type, data FROM blobs").fetchall()
    fresh.conn.executemany("INSERT INTO blobs VALUES (?, ?, ?)", blobs)
    new_id: dict[int, int] = {}
    for old_id, original in branch_events(store):
        event: Any = original
        changes = {
            name: new_id.get(value, value)
            for name in ID_FIELDS
            if isinstance(value := getattr(event, name, None), int)
        }
        (new_id[old_id],) = fresh.append(attrs.evolve(event, **changes)).ids
    return fresh


def world(store: Store, chat_id: str) -> dict[str, Any]:
    """What a chat's story is, without ids or times."""
    chat = store.get_chat(chat_id)
    assert chat is not None
    who = [store.get_you().id, *chat.cast]
    scene = store.active_scene(chat_id)
    return {
        "chat": (chat.title, chat.host_bot_id, chat.guest_bot_id, chat.location, chat.present),
        "timeline": [
            (t.kind, t.speaker_id, t.text, t.truncated, t.interjection_of)
            for t in store.timeline(chat_id)
        ],
        "memories": [
            (m.bot_id, m.text, m.significance, m.pinned)
            for bot in chat.cast
            for m in store.list_memories(bot, chat_id)
        ],
        "edges": store.edges_among(who, chat_id=chat_id),
        "scene": scene.location if scene else "no scene",
        "closed scenes": [s.location for s in store.closed_scenes(chat_id)],
        "world events": [
            (w.title, w.status)
            for w in store.world_events(chat_id, ("planned", "active", "completed", "cancelled"))
        ],
        "inventory": {holder: store.inventory(holder, chat_id) for holder in who},
    }


numbers = st.integers(min_value=0, max_value=10_000)
moves = st.lists(
    st.tuples(st.integers(0, len(MOVES) - 1), numbers, numbers, numbers), min_size=10, max_size=60
)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,  # ``places`` hands out a fresh place each time
    ],
)
@given(drawn=moves)
def test_the_current_branch_world_equals_its_events_replayed_alone(
    places: Places, drawn: list[tuple[int, int, int, int]]
) -> None:
    with places.fresh() as live, places.fresh() as other:
        store = open_store(live)
        try:
            play(store, drawn)
            fresh = rebuilt_from_branches(store, other)
            try:
                for chat in store.list_chats():
                    assert world(fresh, chat.id) == world(store, chat.id), chat.id
            finally:
                fresh.close()
        finally:
            store.close()


def test_a_fixed_walk_branches_and_still_agrees(places: Places) -> None:
    """A long fixed walk that surely forks and switches, so the property is not vacuous."""
    rng = random.Random(11)
    drawn = [
        (n % len(MOVES), rng.randrange(10_000), rng.randrange(10_000), rng.randrange(10_000))
        for n in range(300)
    ]
    with places.fresh() as live, places.fresh() as other:
        store = open_store(live)
        try:
            play(store, drawn)
            kinds = {r[0] for r in store.conn.execute("SELECT DISTINCT kind FROM event_log")}
            assert {"branch_forked", "branch_switched", "chat_rewound"} <= kinds
            fresh = rebuilt_from_branches(store, other)
            try:
                for chat in store.list_chats():
                    assert world(fresh, chat.id) == world(store, chat.id), chat.id
            finally:
                fresh.close()
        finally:
            store.close()


def test_the_export_writes_a_beat_s_alternatives_as_swipes(place: Where) -> None:
    from storeworld import add_bot, add_chat, exchange

    from store._exports import chat_export

    store = open_store(place)
    try:
        mira = add_bot(store, "Mira")
        chat, _ = add_chat(store, mira)
        user, _, first = exchange(store, chat, mira, "Hello.", "First.")
        root = store.current_branch(chat)
        store.fork(chat, user, "regenerate")
        (beat,) = store.append(ev.AssistantTurnStarted(chat, mira, user)).ids
        store.append(ev.AssistantTurn(chat, mira, user, beat, "Second."))
        exported = chat_export(store, chat)
        assert exported is not None
        line = exported.lines[-1]
        assert (line.text, line.swipes, line.swipe_id) == ("Second.", ("First.", "Second."), 1)
        store.switch_branch(chat, root)
        exported = chat_export(store, chat)
        assert exported is not None
        line = exported.lines[-1]
        assert (line.text, line.swipes, line.swipe_id) == ("First.", ("First.", "Second."), 0)
        assert first
    finally:
        store.close()


def test_every_projection_of_a_chat_follows_its_branch() -> None:
    """A table keyed by chat that a switch did not re-project would keep another branch's rows."""
    from store import _branches, _schema

    handled = {*_branches._CHAT_TABLES, "scenes", "memories"}
    tree = {"branches", "chat_branch"}  # the branches themselves, which a switch moves along
    with tempfile.TemporaryDirectory() as folder:
        store = open_store(Path(folder))
        try:
            for table in _schema.PROJECTION_TABLES:
                columns = {row[1] for row in store.conn.execute(f"PRAGMA table_info({table})")}
                if "chat_id" in columns and table not in tree:
                    assert table in handled, f"{table} is not re-projected per chat"
        finally:
            store.close()


def test_the_export_adds_what_a_beat_went_on_to_say(place: Where) -> None:
    from storeworld import add_bot, add_chat, exchange

    from store._exports import chat_export

    store = open_store(place)
    try:
        mira = add_bot(store, "Mira")
        chat, _ = add_chat(store, mira)
        user, _, first = exchange(store, chat, mira, "Hello.", "First.")
        store.append(ev.BeatContinued(chat, first, " And more."))
        store.fork(chat, user, "regenerate")
        (beat,) = store.append(ev.AssistantTurnStarted(chat, mira, user)).ids
        store.append(ev.AssistantTurn(chat, mira, user, beat, "Second."))
        exported = chat_export(store, chat)
        assert exported is not None
        assert exported.lines[-1].swipes == ("First. And more.", "Second.")
    finally:
        store.close()
