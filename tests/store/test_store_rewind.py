"""Supersede (regenerate, edit) and rewind: hidden, never deleted; other chats untouched."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from storeworld import add_chat, dump_projections, exchange, said

from protocol import TurnSettled, UserTurn
from protocol import events as ev
from store import Invalid, NotFound, Store


def test_regenerate_hides_the_old_reply_but_keeps_it_in_the_log(
    store: Store, world: dict[str, str]
) -> None:
    chat, mira = world["chat"], world["mira"]
    user_id, _, old = exchange(store, chat, mira, "Hello.", "First try.")
    (memory,) = store.append(ev.MemoryWritten(chat, mira, "A hello.", source_event_id=old)).ids
    (beat,) = store.append(ev.AssistantTurnStarted(chat, mira, user_id)).ids
    (new,) = store.append(
        ev.AssistantTurn(chat, mira, user_id, beat, "Second try.", supersedes=old)
    ).ids
    assert [t.event_id for t in store.timeline(chat)] == [user_id, new]
    stored = store.get_event(old)
    assert stored is not None and stored.superseded_by == new and not stored.visible
    # The new beat writes its own memories; the old beat's leave the projection
    # (their events stay in the log, so a rewind past the regenerate brings them back).
    assert store.get_memory(memory) is None
    latest = store.latest_assistant_turn(chat)
    assert latest is not None and latest.event_id == new
    store.rewind(chat, memory)
    assert store.get_memory(memory) is not None
    assert [t.event_id for t in store.timeline(chat)] == [user_id, old]


def test_an_edit_supersedes_the_user_turn(store: Store, world: dict[str, str]) -> None:
    chat, mira = world["chat"], world["mira"]
    user_id, _, old = exchange(store, chat, mira, "Helo.", "Eh?")
    (edit,) = store.append(ev.UserTurnEdit(chat, user_id, "Hello.", said("Hello."))).ids
    (beat,) = store.append(ev.AssistantTurnStarted(chat, mira, edit)).ids
    (new,) = store.append(ev.AssistantTurn(chat, mira, edit, beat, "Hi!", supersedes=old)).ids
    turns = store.timeline(chat)
    assert [(t.event_id, t.text, t.user_turn_id) for t in turns] == [
        (edit, "Hello.", edit),
        (new, "Hi!", edit),
    ]


def test_only_visible_turns_of_the_chat_can_be_superseded(
    store: Store, world: dict[str, str]
) -> None:
    chat, mira = world["chat"], world["mira"]
    other, _ = add_chat(store, world["tam"])
    user_id, _, reply = exchange(store, chat, mira, "Hello.", "Hi.")
    (beat,) = store.append(ev.AssistantTurnStarted(chat, mira, user_id)).ids
    with pytest.raises(NotFound):  # a user turn is no assistant turn
        store.append(ev.AssistantTurn(chat, mira, user_id, beat, "x", supersedes=user_id))
    with pytest.raises(NotFound):
        store.append(ev.UserTurnEdit(other, user_id, "x", said("x")))
    store.append(ev.AssistantTurn(chat, mira, user_id, beat, "Again.", supersedes=reply))
    (beat2,) = store.append(ev.AssistantTurnStarted(chat, mira, user_id)).ids
    with pytest.raises(NotFound):  # already superseded
        store.append(ev.AssistantTurn(chat, mira, user_id, beat2, "x", supersedes=reply))
    assert store.open_beats(chat) == [beat2], "the refused append left the beat open"


def constant(at: str) -> Callable[[], str]:
    return lambda: at


def story(store: Store, world: dict[str, str]) -> dict[str, int]:
    """A chat with a checkpoint in the middle, and plenty happening after it."""
    chat, mira, tam = world["chat"], world["mira"], world["tam"]
    marks: dict[str, int] = {}
    (marks["scene"],) = store.append(ev.SceneOpened(chat, "Lantern Inn")).ids
    marks["user"], _, marks["reply"] = exchange(store, chat, mira, "Hello.", "Evening.")
    store.append(ev.EdgeUpdate(mira, "you", chat, 10, 5, ("says hello",)))
    (marks["memory"],) = store.append(ev.MemoryWritten(chat, mira, "A polite guest.")).ids
    (marks["storm"],) = store.append(ev.WorldEventCreated(chat, "Storm", "")).ids
    store.append(ev.WorldEventStarted(chat, marks["storm"]))
    # the checkpoint we will rewind to: the last event before the later turn
    marks["to"] = store.append(ev.MemoryScored(chat, marks["memory"], 1)).ids[0]
    # ... and what comes after it
    exchange(store, chat, mira, "*I draw a knife.*", "Get out.")
    store.append(ev.EdgeUpdate(mira, "you", chat, -60, -40, ("drew a knife",)))
    store.append(ev.MemoryPinned(chat, marks["memory"], "manual"))
    (marks["later_memory"],) = store.append(ev.MemoryWritten(chat, mira, "The knife.")).ids
    store.append(
        ev.SceneClosed(chat, marks["scene"], "fight"),
        ev.SceneSummary(chat, marks["scene"], mira, "A fight."),
    )
    store.append(ev.SceneOpened(chat, "Street"))
    store.append(ev.WorldEventCompleted(chat, marks["storm"]))
    store.append(ev.ObjectAcquired(chat, "you", "knife", marks["storm"]))
    store.append(ev.YouUpdated("Ash", "A knife fighter."))  # world-wide: stays
    store.append(ev.BotCreated("ora", "Ora", ""))  # world-wide: stays
    store.append(ev.EdgeUpdate(tam, mira, None, 5))  # no chat: stays
    return marks


def test_rewind_preview_counts_the_visible_later_events_by_kind(
    store: Store, world: dict[str, str]
) -> None:
    marks = story(store, world)
    preview = store.rewind_preview(world["chat"], marks["to"])
    assert preview.by_kind == {
        "assistant_turn": 1,
        "assistant_turn_started": 1,
        "edge_update": 1,
        "memory_pinned": 1,
        "memory_written": 1,
        "object_acquired": 1,
        "scene_closed": 1,
        "scene_opened": 1,
        "scene_summary": 1,
        "user_turn": 1,
        "world_event_completed": 1,
    }
    assert preview.total == 11
    assert store.event_count() > 0  # a preview writes nothing
    assert store.rewind_preview(world["chat"], marks["to"]) == preview


def test_rewind_restores_every_projection_as_it_was(
    store: Store, world: dict[str, str], tmp_path: Path
) -> None:
    chat, mira = world["chat"], world["mira"]
    marks = story(store, world)
    # the state at the checkpoint, from a second store given the same first events
    twin = Store.open(tmp_path / "twin" / "t.db")
    for event_id in range(1, marks["to"] + 1):
        stored = store.get_event(event_id)
        assert stored is not None
        twin.now = constant(stored.at)  # the same times, so the same projections
        twin.append(stored.event)
    expected = {
        "timeline": twin.timeline(chat),
        "edge": twin.get_edge(mira, "you", chat_id=chat),
        "memories": twin.list_memories(mira),
        "scene": twin.active_scene(chat),
        "world": twin.world_events(chat, ("planned", "active", "completed")),
        "inventory": twin.inventory("you"),
        "chat location": twin.get_chat(chat).location,  # type: ignore[union-attr]
    }
    twin.close()
    total = store.event_count()

    rewind_id = store.rewind(chat, marks["to"])

    assert store.event_count() == total + 1, "nothing is deleted, a chat_rewound is added"
    stored = store.get_event(rewind_id)
    assert stored is not None and stored.event == ev.ChatRewound(chat, marks["to"])
    assert store.timeline(chat) == expected["timeline"]
    assert store.get_edge(mira, "you", chat_id=chat) == expected["edge"]
    assert store.list_memories(mira) == expected["memories"]
    assert store.get_memory(marks["later_memory"]) is None
    assert store.active_scene(chat) == expected["scene"]
    assert store.world_events(chat, ("planned", "active", "completed")) == expected["world"]
    assert store.inventory("you") == expected["inventory"] == []
    assert store.get_chat(chat).location == expected["chat location"]  # type: ignore[union-attr]
    # world-wide events after the checkpoint are not the chat's: they stay
    assert store.get_you().name == "Ash"
    assert store.get_bot("ora") is not None
    assert store.get_edge(world["tam"], mira, chat_id="").affinity == 55
    later = store.get_event(marks["later_memory"])
    assert later is not None and not store.on_current_branch(chat, later.id)
    assert store.current_branch(chat) == rewind_id, "the rewind started a branch"


def test_a_rewind_keeps_the_tail_as_a_branch_to_switch_back_to(
    store: Store, world: dict[str, str]
) -> None:
    chat = world["chat"]
    marks = story(store, world)
    before = dump_projections(store)
    root = store.current_branch(chat)
    rewind_id = store.rewind(chat, marks["to"])
    assert store.snapshots() == [], "nothing is lost, so no copy of the database is taken"
    (old, new) = store.branches(chat)
    assert (old.branch_id, old.current, new.branch_id, new.current) == (
        root,
        False,
        rewind_id,
        True,
    )
    assert (new.parent_id, new.fork_event_id) == (root, marks["to"])
    assert store.get_memory(marks["later_memory"]) is None
    store.switch_branch(chat, root)
    assert store.get_memory(marks["later_memory"]) is not None
    after = dump_projections(store)
    assert after.pop("chat_branch") == before.pop("chat_branch")
    assert after.pop("branches") != before.pop("branches")
    after.pop("event_log marks"), before.pop("event_log marks")
    assert after == before, "the world is exactly what it was before the rewind"
    with pytest.raises(NotFound, match="no branch 999"):
        store.switch_branch(chat, 999)


def test_only_the_newest_snapshots_are_kept(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "t.db", keep_snapshots=2)
    try:
        for n in range(4):
            store.snapshot(f"manual-{n}")
        kept = store.snapshots()
        assert len(kept) == 2
        assert all(p.exists() for p in kept)
    finally:
        store.close()


def test_other_chats_are_untouched_even_when_later(store: Store, world: dict[str, str]) -> None:
    chat, mira, tam = world["chat"], world["mira"], world["tam"]
    other, _ = add_chat(store, tam)
    first_user, _, _ = exchange(store, chat, mira, "One.", "Two.")
    exchange(store, other, tam, "Elsewhere.", "Indeed.")
    (other_memory,) = store.append(ev.MemoryWritten(other, tam, "Elsewhere, later.")).ids
    store.append(ev.EdgeUpdate(tam, "you", other, 20))
    exchange(store, chat, mira, "Three.", "Four.")
    other_timeline = store.timeline(other)

    store.rewind(chat, first_user)

    assert [t.text for t in store.timeline(chat)] == ["One."]
    assert store.timeline(other) == other_timeline
    assert store.get_memory(other_memory) is not None
    assert store.get_edge(tam, "you", chat_id=other).affinity == 70
    rows = store.conn.execute(
        "SELECT count(DISTINCT branch_id) FROM event_log WHERE chat_id = ?", (other,)
    ).fetchall()
    assert rows == [(1,)], "the other chat never branched"


def test_seq_keeps_growing_across_a_rewind(store: Store, world: dict[str, str]) -> None:
    chat = world["chat"]
    (user_id,) = store.append(
        ev.UserTurn(chat, "Hi.", said("Hi.")),
        render=lambda ids: [UserTurn(chat, ids[0], "Hi.", said("Hi."))],
    ).ids
    store.record([TurnSettled(chat, user_id)] * 3)
    assert store.last_seq(chat) == 4
    store.rewind(chat, user_id - 1)
    assert store.last_seq(chat) == 4
    (settled,) = store.record([TurnSettled(chat, user_id)])
    assert settled.seq == 5  # type: ignore[union-attr]


def test_a_rewind_can_bring_back_a_superseded_turn(store: Store, world: dict[str, str]) -> None:
    chat, mira = world["chat"], world["mira"]
    user_id, _, old = exchange(store, chat, mira, "Hello.", "First.")
    (beat,) = store.append(ev.AssistantTurnStarted(chat, mira, user_id)).ids
    store.append(ev.AssistantTurn(chat, mira, user_id, beat, "Second.", supersedes=old))
    store.rewind(chat, old)
    assert [t.text for t in store.timeline(chat)] == ["Hello.", "First."]
    stored = store.get_event(old)
    assert stored is not None and stored.visible


def test_rewinds_of_rewinds(store: Store, world: dict[str, str]) -> None:
    chat, mira = world["chat"], world["mira"]
    first, _, _ = exchange(store, chat, mira, "One.", "1")
    second, _, _ = exchange(store, chat, mira, "Two.", "2")
    exchange(store, chat, mira, "Three.", "3")
    store.rewind(chat, second)
    with pytest.raises(Invalid, match="on another branch"):
        store.rewind(chat, second + 1)
    exchange(store, chat, mira, "Three again.", "3b")
    store.rewind(chat, first)
    assert [t.text for t in store.timeline(chat)] == ["One."]
    before = dump_projections(store)
    store.rebuild()
    assert dump_projections(store) == before


def test_rewind_refuses_what_it_cannot_do(store: Store, world: dict[str, str]) -> None:
    chat, mira, tam = world["chat"], world["mira"], world["tam"]
    other, other_created = add_chat(store, tam)
    user_id, _, _ = exchange(store, chat, mira, "Hello.", "Hi.")
    with pytest.raises(NotFound):
        store.rewind(chat, other_created)
    with pytest.raises(NotFound):
        store.rewind_preview("nope", user_id)
    with pytest.raises(NotFound):
        store.rewind(chat, 10_000)
    store.append(ev.AssistantTurnStarted(chat, mira, user_id))
    with pytest.raises(Invalid, match="still streaming"):
        store.rewind(chat, user_id)
    assert store.snapshots() == [], "a refused rewind makes no snapshot"
    assert store.open_beats(other) == []
