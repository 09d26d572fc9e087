"""Every projection, as the turn flow and the clients read it."""

from __future__ import annotations

from storeworld import add_bot, add_chat, exchange, said

from protocol import (
    Artifacts,
    Bot,
    Edge,
    KnowledgeArtifact,
    Memory,
    ObjectArtifact,
    RelationshipArtifact,
    Turn,
)
from protocol import events as ev
from store import Store


def test_you_can_be_renamed(store: Store) -> None:
    store.append(ev.YouUpdated("Ash", "A wandering cartographer."))
    you = store.get_you()
    assert (you.name, you.persona) == ("Ash", "A wandering cartographer.")


def test_bots_are_created_updated_and_flagged_when_deleted(store: Store) -> None:
    store.append(ev.BotCreated("mira", "Mira", "A barkeep.", "Welcome."))
    store.append(ev.BotCreated("tam", "Tam", "A smuggler."))
    store.append(ev.BotUpdated("mira", persona="A retired barkeep."))
    assert store.get_bot("mira") == Bot("mira", "Mira", "A retired barkeep.", "Welcome.")
    assert [b.id for b in store.list_bots()] == ["mira", "tam"]

    store.append(ev.BotDeleted("tam"))
    assert store.get_bot("tam") is None
    assert [b.id for b in store.list_bots()] == ["mira"]
    kept = store.get_entity("tam")
    assert kept is not None and kept.name == "Tam", "old turns can still name it"


def test_deleting_a_bot_clears_it_as_guest_from_every_chat(store: Store) -> None:
    mira, tam, ora = add_bot(store, "Mira"), add_bot(store, "Tam"), add_bot(store, "Ora")
    first, _ = add_chat(store, mira, tam)
    second, _ = add_chat(store, ora, tam)
    third, _ = add_chat(store, tam, mira)
    store.append(ev.BotDeleted(tam))
    one, two, three = (store.get_chat(c) for c in (first, second, third))
    assert one is not None and one.guest_bot_id is None and one.host_bot_id == mira
    assert two is not None and two.guest_bot_id is None
    assert three is not None and three.host_bot_id == tam, "a host keeps its chat's history"


def test_chats_keep_host_guest_location_title_and_creation_time(store: Store) -> None:
    mira, tam = add_bot(store, "Mira"), add_bot(store, "Tam")
    first, created_id = add_chat(store, mira, tam, "Lantern Inn", "Night shift")
    second, _ = add_chat(store, tam)
    chat = store.get_chat(first)
    assert chat is not None
    assert (chat.title, chat.host_bot_id, chat.guest_bot_id, chat.location) == (
        "Night shift",
        mira,
        tam,
        "Lantern Inn",
    )
    stored = store.get_event(created_id)
    assert stored is not None and chat.created_at == stored.at
    assert [c.id for c in store.list_chats()] == [second, first]
    assert store.location_description("Lantern Inn") == "", "naming a place creates it"


def test_locations_can_be_described(store: Store) -> None:
    store.append(ev.LocationCreated("Docks", "Tar and gulls."))
    store.append(ev.LocationCreated("Docks", "Tar, gulls and fog."))
    assert store.location_description("Docks") == "Tar, gulls and fog."
    assert store.location_description("Moon") is None


def test_the_timeline_shows_user_and_assistant_turns_in_order(
    store: Store, world: dict[str, str]
) -> None:
    chat, mira = world["chat"], world["mira"]
    user_id, beat_id, reply_id = exchange(store, chat, mira, "*I sit down.* Hello.", "Evening.")
    assert store.timeline(chat) == [
        Turn(user_id, "user", "you", "*I sit down.* Hello.", False, None, user_id),
        Turn(reply_id, "assistant", mira, "Evening.", False, None, user_id),
    ]
    assert store.open_beats(chat) == []
    assert beat_id not in [t.event_id for t in store.timeline(chat)], "a start is no turn"


def test_a_greeting_answers_the_chat_created_event(store: Store) -> None:
    mira = add_bot(store, "Mira", greeting="Welcome.")
    chat, created_id = add_chat(store, mira)
    (beat,) = store.append(ev.AssistantTurnStarted(chat, mira, created_id)).ids
    (turn,) = store.append(ev.AssistantTurn(chat, mira, created_id, beat, "Welcome.")).ids
    assert store.timeline(chat) == [
        Turn(turn, "assistant", mira, "Welcome.", False, None, created_id)
    ]


def test_open_beats_are_tracked_until_their_turn_lands(
    store: Store, world: dict[str, str]
) -> None:
    chat, mira, tam = world["chat"], world["mira"], world["tam"]
    (user_id,) = store.append(ev.UserTurn(chat, "Hi.", said("Hi."))).ids
    (beat,) = store.append(ev.AssistantTurnStarted(chat, mira, user_id)).ids
    (interjection,) = store.append(ev.AssistantTurnStarted(chat, tam, user_id, mira)).ids
    assert store.open_beats(chat) == [beat, interjection]
    store.append(ev.AssistantTurn(chat, mira, user_id, beat, "Hm.", truncated=True, error="x"))
    assert store.open_beats(chat) == [interjection]
    turn = store.latest_assistant_turn(chat)
    assert turn is not None and turn.truncated and turn.text == "Hm."


def test_edges_start_at_fifty_clamp_to_the_range_and_gather_facts(
    store: Store, world: dict[str, str]
) -> None:
    chat, mira = world["chat"], world["mira"]
    assert store.get_edge(mira, "you", chat_id=chat) == Edge(mira, "you", 50, 50, "", ())
    store.append(ev.EdgeUpdate(mira, "you", chat, 30, -70, ("pays in silver",)))
    store.append(ev.EdgeUpdate(mira, "you", chat, 40, 5, ("pays in silver", " has a key ")))
    assert store.get_edge(mira, "you", chat_id=chat) == Edge(
        mira, "you", 100, 5, "", ("pays in silver", "has a key")
    )
    store.append(ev.EdgeUpdate(mira, "you", chat, -250, 0, summary="A good customer."))
    assert store.get_edge(mira, "you", chat_id=chat).affinity == 0
    assert store.get_edge(mira, "you", chat_id=chat).summary == "A good customer."
    assert store.get_edge("you", mira, chat_id=chat) == Edge("you", mira, 50, 50, "", ()), (
        "edges are directed"
    )
    last = store.conn.execute(
        "SELECT last_chat_id, last_at FROM edges WHERE source_id = ?", (mira,)
    ).fetchall()
    assert last[0][0] == chat and last[0][1] is not None


def test_knowledge_facts_are_capped_oldest_first(store: Store, world: dict[str, str]) -> None:
    chat, mira = world["chat"], world["mira"]
    for batch in range(3):
        facts = tuple(f"fact {batch}-{n}" for n in range(10))
        store.append(ev.EdgeUpdate(mira, "you", chat, knowledge_facts=facts))
    facts = store.get_edge(mira, "you", chat_id=chat).knowledge_facts
    assert len(facts) == 20
    assert facts[0] == "fact 1-0" and facts[-1] == "fact 2-9"


def test_edges_among_gives_every_directed_pair(store: Store, world: dict[str, str]) -> None:
    chat, mira, tam = world["chat"], world["mira"], world["tam"]
    store.append(ev.EdgeUpdate(tam, mira, chat, -10))
    edges = store.edges_among(["you", mira, tam, mira], chat_id=chat)
    assert [(e.source_id, e.target_id) for e in edges] == [
        ("you", mira),
        ("you", tam),
        (mira, "you"),
        (mira, tam),
        (tam, "you"),
        (tam, mira),
    ]
    assert edges[-1].affinity == 40


def test_memories_are_written_scored_and_pinned_by_whom(
    store: Store, world: dict[str, str]
) -> None:
    chat, mira, tam = world["chat"], world["mira"], world["tam"]
    (scene,) = store.append(ev.SceneOpened(chat, "Lantern Inn")).ids
    first, second, third = store.append(
        ev.MemoryWritten(chat, mira, "The stranger paid in old silver.", scene_id=scene),
        ev.MemoryWritten(chat, mira, "Tam owes me money."),
        ev.MemoryWritten(chat, tam, "Mira watched the door all night."),
    ).ids
    store.append(ev.MemoryScored(chat, first, 3), ev.MemoryPinned(chat, first, "auto"))
    store.append(ev.MemoryScored(chat, second, 1), ev.MemoryPinned(chat, second, "manual"))
    assert store.get_memory(first) == Memory(
        first, mira, chat, "The stranger paid in old silver.", 3, True
    )
    assert [m.id for m in store.list_memories(mira)] == [first, second]
    assert [m.id for m in store.list_memories(tam, chat)] == [third]
    assert [m.id for m in store.pinned_memories(mira, chat_id=chat)] == [first, second]
    assert [m.id for m in store.auto_pinned(mira, chat_id=chat)] == [first]
    store.append(ev.MemoryUnpinned(chat, first, "auto"))
    assert [m.id for m in store.pinned_memories(mira, chat_id=chat)] == [second]
    assert store.auto_pinned(mira, chat_id=chat) == []
    row = store.conn.execute("SELECT scene_id FROM memories WHERE id = ?", (first,)).fetchall()
    assert row == [(scene,)]


def test_auto_pins_list_the_eviction_order(store: Store, world: dict[str, str]) -> None:
    chat, mira = world["chat"], world["mira"]
    ids = store.append(*(ev.MemoryWritten(chat, mira, f"memory {n}") for n in range(4))).ids
    for memory_id, significance in zip(ids, (3, 2, 3, 2), strict=True):
        store.append(
            ev.MemoryScored(chat, memory_id, significance),
            ev.MemoryPinned(chat, memory_id, "auto"),
        )
    assert [m.id for m in store.auto_pinned(mira, chat_id=chat)] == [
        ids[1],
        ids[3],
        ids[0],
        ids[2],
    ]


def test_relevant_memories_rank_by_text_and_stay_with_their_bot(
    store: Store, world: dict[str, str]
) -> None:
    chat, mira, tam = world["chat"], world["mira"], world["tam"]
    silver, storm, _, pinned = store.append(
        ev.MemoryWritten(chat, mira, "The stranger paid in old silver coins."),
        ev.MemoryWritten(chat, mira, "A storm tore the sign off the inn."),
        ev.MemoryWritten(chat, tam, "Silver, silver, silver everywhere."),
        ev.MemoryWritten(chat, mira, "Silver coins are trouble."),
    ).ids
    store.append(ev.MemoryPinned(chat, pinned, "manual"))
    found = store.relevant_memories(mira, "Do you remember my silver coins?", chat_id=chat)
    assert [m.id for m in found] == [silver]
    with_pins = store.relevant_memories(mira, "silver coins", exclude_pinned=False, chat_id=chat)
    assert {m.id for m in with_pins} == {silver, pinned}
    assert [m.id for m in store.relevant_memories(mira, "STORM!", chat_id=chat)] == [storm]
    assert store.relevant_memories(mira, "", chat_id=chat) == []


def test_relevant_memories_are_safe_against_search_syntax(
    store: Store, world: dict[str, str]
) -> None:
    chat, mira = world["chat"], world["mira"]
    (memory,) = store.append(ev.MemoryWritten(chat, mira, "The NEAR door was open.")).ids
    for nasty in ['"', 'door" OR "x', "NEAR(door open)", "door*", "-door", "^door", "a:b", "(("]:
        found = store.relevant_memories(mira, nasty, chat_id=chat)
        assert all(m.id == memory for m in found)
    assert [m.id for m in store.relevant_memories(mira, 'NEAR("door")', chat_id=chat)] == [memory]


def test_scenes_open_and_close_with_a_summary_per_witness(
    store: Store, world: dict[str, str]
) -> None:
    chat, mira, tam = world["chat"], world["mira"], world["tam"]
    (scene,) = store.append(ev.SceneOpened(chat, "Cellar")).ids
    active = store.active_scene(chat)
    assert active is not None and (active.id, active.location) == (scene, "Cellar")
    chat_row = store.get_chat(chat)
    assert chat_row is not None and chat_row.location == "Cellar", "the chat moved there"
    assert store.location_description("Cellar") == ""
    store.append(
        ev.SceneClosed(chat, scene, "fade out", "Docks"),
        ev.SceneSummary(chat, scene, mira, "We talked in the cellar."),
        ev.SceneSummary(chat, scene, tam, "I kept quiet."),
    )
    assert store.active_scene(chat) is None
    assert [s.id for s in store.closed_scenes(chat)] == [scene]
    assert store.scene_summaries(scene) == {mira: "We talked in the cellar.", tam: "I kept quiet."}
    (again,) = store.append(ev.SceneOpened(chat, None)).ids
    active = store.active_scene(chat)
    assert active is not None and active.id == again
    chat_row = store.get_chat(chat)
    assert chat_row is not None and chat_row.location == "Cellar", "no place, no move"


def test_world_events_move_through_their_statuses(store: Store, world: dict[str, str]) -> None:
    chat, mira = world["chat"], world["mira"]
    artifacts = Artifacts(
        knowledge_facts=(KnowledgeArtifact(mira, "you", "knows the tide tables"),),
        relationship_changes=(RelationshipArtifact(mira, "you", 10, 5),),
        acquired_objects=(ObjectArtifact("you", "brass key"),),
    )
    storm, fair = store.append(
        ev.WorldEventCreated(chat, "The storm", "It comes at dusk.", artifacts),
        ev.WorldEventCreated(chat, "The fair", ""),
    ).ids
    assert [(w.id, w.status) for w in store.world_events(chat)] == [
        (storm, "planned"),
        (fair, "planned"),
    ]
    store.append(ev.WorldEventStarted(chat, storm), ev.WorldEventCancelled(chat, fair))
    store.append(ev.WorldEventCompleted(chat, storm))
    assert store.world_events(chat) == []
    done = store.world_events(chat, ("completed",))
    assert [(w.id, w.title, w.description) for w in done] == [
        (storm, "The storm", "It comes at dusk.")
    ]
    assert done[0].artifacts == artifacts
    cancelled = store.get_world_event(fair)
    assert cancelled is not None and cancelled.status == "cancelled"


def test_inventory_holds_acquired_objects(store: Store, world: dict[str, str]) -> None:
    chat, mira = world["chat"], world["mira"]
    (event,) = store.append(ev.WorldEventCreated(chat, "Trade", "")).ids
    store.append(ev.ObjectAcquired(chat, "you", "brass key", event))
    store.append(ev.ObjectAcquired(chat, "you", "lantern"), ev.ObjectAcquired(chat, mira, "coin"))
    assert store.inventory("you") == ["brass key", "lantern"]
    assert store.inventory(mira) == ["coin"]
