"""The decoded events a chat's replay reads: each decoded once, never a stale one."""

from __future__ import annotations

from storeworld import Where, open_store

from protocol import dump_event
from protocol import events as ev
from store._branches import DecodedEvents


def test_an_event_is_decoded_once_and_an_id_reused_with_another_payload_anew() -> None:
    decoded = DecodedEvents(size=2)
    kind, payload = dump_event(ev.BotCreated("mira", "Mira", "A barkeep."))
    first = decoded.load(1, kind, payload)
    assert decoded.load(1, kind, payload) is first
    other_kind, other = dump_event(ev.BotCreated("tam", "Tam", "A sailor."))
    fresh = decoded.load(1, other_kind, other)
    assert isinstance(fresh, ev.BotCreated) and fresh.bot_id == "tam"
    decoded.load(2, kind, payload)
    decoded.load(3, kind, payload)
    assert decoded.load(1, other_kind, other) is not fresh  # the oldest went first


def test_a_switch_replays_the_same_world_with_the_events_kept_or_not(place: Where) -> None:
    store = open_store(place)
    try:
        store.append(ev.BotCreated("mira", "Mira", ""), ev.ChatCreated("c1", "t", "mira"))
        said = ev.UserTurn("c1", "Hello.", ())
        (user,) = store.append(said).ids
        (started,) = store.append(ev.AssistantTurnStarted("c1", "mira", user)).ids
        (beat,) = store.append(ev.AssistantTurn("c1", "mira", user, started, "Hi.")).ids
        root = store.current_branch("c1")
        store.fork("c1", user, "regenerate")
        store.append(ev.UserTurn("c1", "Again.", ()))
        store.conn.execute("DELETE FROM branch_views")
        store.switch_branch("c1", root)
        warm = [(t.kind, t.text) for t in store.timeline("c1")]
        store.decoded = DecodedEvents()  # nothing kept: every event decoded from the log
        store.conn.execute("DELETE FROM branch_views")
        store.switch_branch("c1", store.branches("c1")[1].branch_id)
        store.conn.execute("DELETE FROM branch_views")
        store.switch_branch("c1", root)
        assert [(t.kind, t.text) for t in store.timeline("c1")] == warm
        assert warm == [("user", "Hello."), ("assistant", "Hi.")] and beat > user
    finally:
        store.close()
