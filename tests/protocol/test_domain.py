"""The domain's rules, each in one place: edge numbers, world-event moves, prompt messages."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping

import pytest

import llm
import protocol as p
import story
from protocol import events as ev
from protocol._shapes import KnowledgeArtifact, ObjectArtifact, RelationshipArtifact
from store import Invalid, NotFound, StorageFull, StoreError
from story._classifiers import _scene_summary, _state_update


def test_rounding_goes_half_away_from_zero() -> None:
    halves = [p.round_half_away(v) for v in (2.5, -2.5, 0.5, -0.5, 1.49, -1.51)]
    assert halves == [3, -3, 1, -1, 1, -2]
    assert p.round_half_away(math.inf) is None
    assert p.round_half_away(math.nan) is None


def test_clamp_edge_takes_integers_of_any_size_exactly() -> None:
    # A sum of deltas read from an old log can pass 64 bits; a float would overflow.
    assert p.clamp_edge(2**80) == p.EDGE_MAX
    assert p.clamp_edge(-(2**80)) == p.EDGE_MIN
    assert p.clamp_edge(73) == 73


def test_a_blank_edge_is_neutral() -> None:
    edge = p.blank_edge("mira", "you")
    assert (edge.affinity, edge.trust, edge.summary, edge.knowledge_facts) == (50, 50, "", ())
    assert p.EDGE_DEFAULT == (p.EDGE_MIN + p.EDGE_MAX) // 2


STATUSES = ("planned", "active", "completed", "cancelled")


@pytest.mark.parametrize("status", STATUSES)
@pytest.mark.parametrize("to", STATUSES)
def test_world_event_moves_walked_state_by_state(status: str, to: str) -> None:
    legal = {("planned", "active"), ("planned", "cancelled"), ("active", "completed")}
    legal |= {("active", "cancelled")}
    assert p.can_move(status, to) == ((status, to) in legal)
    if to in p.MOVE_EVENTS:
        assert (status in p.moved_from(to)) == ((status, to) in legal)  # type: ignore[arg-type]


def test_only_open_statuses_can_move() -> None:
    assert {s for s in STATUSES if p.WORLD_EVENT_MOVES[s]} == set(p.OPEN_STATUSES)  # type: ignore[index]


def test_a_completed_world_event_promotes_its_artifacts() -> None:
    artifacts = p.Artifacts(
        knowledge_facts=(KnowledgeArtifact("mira", "you", "owns the key"),),
        relationship_changes=(RelationshipArtifact("mira", "you", 5, -2),),
        acquired_objects=(ObjectArtifact("you", "lantern"),),
    )
    assert p.world_event_moved("c1", 7, "completed", artifacts) == [
        ev.WorldEventCompleted("c1", 7),
        ev.EdgeUpdate("mira", "you", "c1", 5, -2, ("owns the key",)),
        ev.ObjectAcquired("c1", "you", "lantern", 7),
    ]
    assert p.world_event_moved("c1", 7, "active", artifacts) == [ev.WorldEventStarted("c1", 7)]
    assert p.world_event_moved("c1", 7, "cancelled", artifacts) == [
        ev.WorldEventCancelled("c1", 7)
    ]


def test_a_promotion_carries_no_more_facts_than_an_edge_keeps() -> None:
    facts = [f"fact {n}" for n in range(p.MAX_FACTS + 5)]
    many = p.load_stored(
        {"knowledge_facts": [{"source_id": "a", "target_id": "b", "fact": f} for f in facts]},
        p.Artifacts,
    )
    (update,) = p.promotions("c1", 3, many)
    assert isinstance(update, ev.EdgeUpdate)
    assert update.knowledge_facts == tuple(facts[-p.MAX_FACTS :])
    p.check_event(update)


def test_stop_sequences_are_everyone_elses_tags() -> None:
    assert p.stop_sequences(["You", "Tam"]) == ("\nYou:", "\nTam:")


def test_one_prompt_message_type() -> None:
    assert llm.Message is p.PromptMessage
    assert story.PromptMessage is p.PromptMessage


def test_the_layers_read_the_protocols_rules() -> None:
    assert story.EDGE_DEFAULT == p.EDGE_DEFAULT and story.clamp_edge is p.clamp_edge
    assert story.LEGAL_MOVES is p.WORLD_EVENT_MOVES
    assert story.AUTO_PIN_SIGNIFICANCE == p.MAX_SIGNIFICANCE


def test_what_a_classifier_writes_fits_what_the_log_takes() -> None:
    # The classifiers' caps are tighter on purpose (short prompts); never looser.
    assert _state_update.MAX_FACT_CHARS <= p.MAX_FACT
    assert _state_update.MAX_FACTS <= p.MAX_FACTS
    assert _state_update.MAX_DELTA <= p.MAX_EDGE_DELTA
    assert _scene_summary.MAX_FACT_CHARS <= p.MAX_FACT
    assert _scene_summary.MAX_KNOWLEDGE <= p.MAX_FACTS
    assert _scene_summary.MAX_SUMMARY_CHARS <= p.MAX_DESCRIPTION
    assert _scene_summary.MAX_EDGE_SUMMARY_CHARS <= p.MAX_DESCRIPTION


# --- the log reads back what an earlier release wrote under other limits ---

OLD_ARTIFACTS = {
    "knowledge_facts": [],
    "relationship_changes": [
        {"source_id": "mira", "target_id": "you", "affinity_delta": 250, "trust_delta": -(2**70)}
    ],
    "acquired_objects": [
        {"holder_id": "you", "name": f"coin {n}"} for n in range(p.MAX_ARTIFACTS)
    ],
}
"""Twenty-one changes, a delta past ±100 and one past 64 bits: all refused from a client today."""


def test_an_old_log_replays_events_todays_limits_refuse() -> None:
    old = json.dumps({"chat_id": "c1", "title": "Storm", "artifacts": OLD_ARTIFACTS})
    event = p.load_event("world_event_created", old)
    assert isinstance(event, ev.WorldEventCreated)
    assert event.artifacts.count == p.MAX_ARTIFACTS + 1
    assert event.artifacts.relationship_changes[0].trust_delta == -(2**70)
    big = p.load_event("chat_rewound", json.dumps({"chat_id": "c1", "to_event_id": 2**64}))
    assert big == p.load_stored({"chat_id": "c1", "to_event_id": 2**64}, ev.ChatRewound)
    assert p.load_stored(OLD_ARTIFACTS, p.Artifacts) == event.artifacts


def test_a_client_still_meets_todays_limits() -> None:
    def refusal(artifacts: Mapping[str, object]) -> p.ProtocolError:
        frame = {
            "type": "create_world_event",
            "chat_id": "c1",
            "title": "S",
            "artifacts": artifacts,
        }
        with pytest.raises(p.ProtocolError) as refused:
            p.decode_client(json.dumps(frame))
        return refused.value

    assert refusal(OLD_ARTIFACTS).code == "bad_message"
    too_many = {"acquired_objects": [{"holder_id": "you", "name": "coin"}] * 21}
    assert refusal(too_many).code == "too_large"
    with pytest.raises(p.EventPayloadError, match="64-bit"):
        p.check_event(ev.ChatRewound("c1", 2**64))


def test_an_old_world_event_completes_within_todays_limits() -> None:
    artifacts = p.load_stored(OLD_ARTIFACTS, p.Artifacts)
    events = p.world_event_moved("c1", 9, "completed", artifacts)
    for event in events:
        p.check_event(event)  # what the move appends passes today's limits
    update = events[1]
    assert isinstance(update, ev.EdgeUpdate)
    assert (update.affinity_delta, update.trust_delta) == (p.MAX_EDGE_DELTA, -p.MAX_EDGE_DELTA)
    assert len(events) == 2 + p.MAX_ARTIFACTS


def test_each_move_event_names_the_status_it_leaves() -> None:
    for to, event in p.MOVE_EVENTS.items():
        assert p.MOVED_TO[event] == to
        assert issubclass(event, ev.WorldEventMove)


@pytest.mark.parametrize(
    ("refusal", "code"),
    [(NotFound, "not_found"), (Invalid, "invalid"), (StorageFull, "storage_full")],
)
def test_a_store_refusal_is_answered_with_its_code(refusal: type[Exception], code: str) -> None:
    with pytest.raises(p.ProtocolError) as answered, p.refusals_answered():
        raise refusal("there is no chat 'c9'")
    assert (answered.value.code, answered.value.message) == (code, "there is no chat 'c9'")


def test_anything_else_passes_through_unanswered() -> None:
    with pytest.raises(KeyError), p.refusals_answered():
        raise KeyError("a bug")


def test_a_refusal_without_a_code_is_a_fault_left_as_it_is() -> None:
    with pytest.raises(StoreError), p.refusals_answered():
        raise StoreError("the database is newer than this troupe")
