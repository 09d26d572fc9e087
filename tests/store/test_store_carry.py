"""A chat carried on from another: the carried memories, scores, pins and edges are the
new chat's own events, so a rebuild gives them back exactly."""

from __future__ import annotations

import pytest
from storeworld import dump_projections

from protocol import YOU_ID
from protocol import events as ev
from store import NotFound, Store, start_chat


def test_the_bots_of_both_casts_carry_their_memories_pins_and_edges(
    store: Store, world: dict[str, str]
) -> None:
    chat, mira, tam = world["chat"], world["mira"], world["tam"]
    store.append(ev.CastAdded(chat, tam))
    kept, plain, _tams = store.append(
        ev.MemoryWritten(chat, mira, "The stranger paid in silver."),
        ev.MemoryWritten(chat, mira, "It rained all night."),
        ev.MemoryWritten(chat, tam, "Mira owes me a coin."),
    ).ids
    store.append(ev.MemoryScored(chat, kept, 3), ev.MemoryPinned(chat, kept, "auto"))
    store.append(
        ev.EdgeUpdate(mira, YOU_ID, chat, 20, -5, ("pays in silver",), "A good customer."),
        ev.EdgeUpdate(tam, mira, chat, -10),
    )

    created = ev.ChatCreated("c9", "Later", mira, continue_from=chat)
    (created_id, opened) = start_chat(store, created, ev.SceneOpened("c9", "Quay")).ids
    assert store.get_event(created_id).event == created  # type: ignore[union-attr]
    assert store.active_scene("c9").id == opened  # type: ignore[union-attr]

    carried = store.list_memories(mira, "c9")
    assert [m.text for m in carried] == ["The stranger paid in silver.", "It rained all night."]
    assert {m.id for m in carried}.isdisjoint({kept, plain}), "new memories, new ids"
    assert [(m.significance, m.pinned) for m in carried] == [(3, True), (0, False)]
    assert store.auto_pinned(mira, chat_id="c9") == carried[:1]
    assert store.list_memories(tam, "c9") == [], "Tam is not in the new cast"
    edge = store.get_edge(mira, YOU_ID, chat_id="c9")
    assert (edge.affinity, edge.trust, edge.summary, edge.knowledge_facts) == (
        70,
        45,
        "A good customer.",
        ("pays in silver",),
    )
    assert store.get_edge(tam, mira, chat_id="c9").affinity == 50
    assert store.get_edge(tam, mira, chat_id=chat).affinity == 40, "the old chat keeps its own"

    before = dump_projections(store)
    store.rebuild()
    assert dump_projections(store) == before


def test_an_unknown_chat_to_continue_from_writes_nothing(
    store: Store, world: dict[str, str]
) -> None:
    total = store.event_count()
    with pytest.raises(NotFound, match="c404"):
        start_chat(store, ev.ChatCreated("c9", "Later", world["mira"], continue_from="c404"))
    assert store.event_count() == total and store.get_chat("c9") is None
