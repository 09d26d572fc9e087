"""A log written under older, looser limits still replays, and its world events still complete."""

from __future__ import annotations

import json

import protocol as p
from protocol import events as ev
from store import Store

OLD_ARTIFACTS = {
    "relationship_changes": [
        {"source_id": "mira", "target_id": "you", "affinity_delta": 250, "trust_delta": -(2**70)}
    ],
    "acquired_objects": [{"holder_id": "you", "name": f"coin {n}"} for n in range(20)],
}
"""Twenty-one changes, a delta past ±100, one past 64 bits: what an earlier release let through."""


def test_an_old_world_event_replays_and_completes(store: Store, world: dict[str, str]) -> None:
    chat = world["chat"]
    payload = json.dumps({"chat_id": chat, "title": "Storm", "artifacts": OLD_ARTIFACTS})
    # Written as the earlier release did; today's append would refuse it.
    store.conn.execute(
        "INSERT INTO event_log(at, chat_id, kind, payload) VALUES (?, ?, ?, ?)",
        ("2026-01-01T00:00:00.000+00:00", chat, "world_event_created", payload),
    )
    store.rebuild()
    (old,) = store.world_events(chat)
    assert old.artifacts.count == 21
    store.append(ev.WorldEventStarted(chat, old.id))
    store.append(*p.world_event_moved(chat, old.id, "completed", old.artifacts))
    edge = store.get_edge("mira", "you", chat_id=chat)
    assert (edge.affinity, edge.trust) == (p.EDGE_MAX, p.EDGE_MIN)
    assert store.world_events(chat, ("completed",))[0].id == old.id
    assert store.rebuild() > 0  # and the whole log, the completion included, replays again
