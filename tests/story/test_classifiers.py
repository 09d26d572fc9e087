"""Classifier prompts, schemas and validators: lenient reading, clamping, never raising."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol import Bot, Edge
from story import (
    ADDRESSEE_SCHEMA,
    INTERJECTION_DEFAULT,
    INTERJECTION_SCHEMA,
    LIFECYCLE_SCHEMA,
    SCENE_CLOSE_DEFAULT,
    SCENE_CLOSE_SCHEMA,
    SCENE_SUMMARY_SCHEMA,
    SIGNIFICANCE_SCHEMA,
    STATE_UPDATE_DEFAULT,
    STATE_UPDATE_SCHEMA,
    InterjectionDecision,
    OpenEvent,
    SceneCloseDecision,
    SceneSummaryResult,
    StateChange,
    Target,
    Transition,
    Witness,
    addressee_prompt,
    addressee_schema,
    default_scene_summary,
    extractive_summary,
    interjection_prompt,
    interjection_schema,
    lifecycle_needed,
    lifecycle_prompt,
    load_json,
    scene_close_prompt,
    scene_summary_prompt,
    significance_prompt,
    state_update_prompt,
    state_updates_schema,
    validate_addressee,
    validate_interjection,
    validate_lifecycle,
    validate_scene_close,
    validate_scene_summary,
    validate_significance,
    validate_state_update,
    validate_state_updates,
)

MIRA = Bot("mira", "Mira", "Keeps the bar.", "")
WITNESSES = [Witness(MIRA, None, None)]
EVENTS = (
    OpenEvent(1, "planned", "The festival", "Lanterns on the water."),
    OpenEvent(2, "active", "The storm", "A storm batters the harbour."),
    OpenEvent(3, "completed", "The wreck", ""),
)
OTHERS = {"you": "Ana", "tobias": "Tobias Grey"}
TRANSCRIPT = ("Ana: Evening. Any rooms?", "Mira: One left. It leaks.", "Tobias Grey: Take it.")


# --- state update ---


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"affinity_delta": 500, "trust_delta": -999, "knowledge_facts": []}, (10, -10, ())),
        ({"affinity_delta": "7", "trust_delta": 2.6, "knowledge_facts": []}, (7, 3, ())),
        ({"affinity_delta": -2.5, "trust_delta": " +4 ", "knowledge_facts": None}, (-3, 4, ())),
        (
            {"Affinity_Delta": 3, "TRUST": True, "knowledge_facts": "likes rum"},
            (3, 0, ("likes rum",)),
        ),
        (
            '```json\n{"affinity_delta": 1, "trust_delta": 2, "knowledge_facts": ["a"]}\n```',
            (1, 2, ("a",)),
        ),
        ('Sure! {"affinity_delta": 4, "trust_delta": 0} Hope that helps.', (4, 0, ())),
        ("I think she likes them a lot!", (0, 0, ())),
        ('{"affinity_delta": ', (0, 0, ())),
        ({"affinity_delta": float("nan"), "trust_delta": float("inf")}, (0, 0, ())),
        ({"affinity_delta": "lots", "trust_delta": [3]}, (0, 0, ())),
        (None, (0, 0, ())),
    ],
)
def test_state_update_is_clamped(raw: object, expected: tuple[int, int, tuple[str, ...]]) -> None:
    change = validate_state_update(raw)
    assert (change.affinity_delta, change.trust_delta, change.knowledge_facts) == expected


def test_state_update_facts_are_few_short_trimmed_and_distinct() -> None:
    facts = ["  one  ", "ONE", "two\n\nlines", "", 5, "x" * 500, "four", "five"]
    change = validate_state_update(
        {"affinity_delta": 0, "trust_delta": 0, "knowledge_facts": facts}
    )
    assert change.knowledge_facts[:2] == ("one", "two lines")
    assert len(change.knowledge_facts) == 3
    assert len(change.knowledge_facts[2]) == 200 and change.knowledge_facts[2].endswith("…")


def test_state_update_default_and_prompt() -> None:
    assert StateChange(0, 0, ()) == STATE_UPDATE_DEFAULT
    messages = state_update_prompt(
        "mira",
        "Mira",
        "Keeps the bar.",
        [
            Target("you", "Ana", "A sailor.", Edge("mira", "you", 70, 40, "", ())),
            Target("oda", "Oda", "A pilot.", None),
        ],
        ["Ana: Hi.", "Mira: Hello."],
    )
    assert [m.role for m in messages] == ["system", "user"]
    assert "affinity_delta" in messages[0].content and '"oda"' in messages[0].content
    assert messages[1].content.startswith("pair: mira -> you\npair: mira -> oda\n")
    assert "A sailor." in messages[1].content and "Mira: Hello." in messages[1].content
    assert "affinity 70/100" in messages[1].content
    assert "no history yet" in messages[1].content


def test_one_sources_state_update_has_an_entry_per_target_each_clamped() -> None:
    schema = state_updates_schema(["you", "oda"])
    assert schema["properties"]["edges"]["required"] == ["you", "oda"]
    changes = validate_state_updates(
        '{"edges": {"you": {"affinity_delta": 50, "trust_delta": -3, "knowledge_facts": []},'
        ' "stranger": {"affinity_delta": 5}}}',
        ["you", "oda"],
    )
    assert changes == {"you": StateChange(10, -3, ()), "oda": STATE_UPDATE_DEFAULT}
    assert validate_state_updates("garbage", ["you"]) == {"you": STATE_UPDATE_DEFAULT}
    assert validate_state_updates({"you": {"trust_delta": 2}}, ["you"]) == {
        "you": StateChange(0, 2, ())
    }


# --- significance ---


@pytest.mark.parametrize(
    ("raw", "score"),
    [
        (3, 3),
        ({"significance": 2}, 2),
        ('{"significance": "1"}', 1),
        ({"significance": 9}, 3),
        ({"score": -4}, 0),
        ("very significant", 0),
        (2.5, 3),
        (True, 0),
        ("2", 2),
        ([], 0),
    ],
)
def test_significance_is_clamped(raw: object, score: int) -> None:
    assert validate_significance(raw) == score


def test_significance_prompt_carries_memory_and_context() -> None:
    messages = significance_prompt("My brother drowned here.", "Ana: ...")
    assert "brother" in messages[1].content and "Ana: ..." in messages[1].content


# --- addressee ---


@pytest.mark.parametrize(
    ("raw", "choice"),
    [
        ({"addressee": "guest"}, "guest"),
        ({"addressee": "host"}, "host"),
        ({"addressee": "Tobias"}, "guest"),
        ({"addressee": "tobias grey"}, "guest"),
        ({"addressee": "Mira"}, "host"),
        ('{"addressee": "GUEST"}', "guest"),
        ("guest", "guest"),
        ("the tall one, probably", "host"),
        ({"addressee": 7}, "host"),
        (None, "host"),
    ],
)
def test_addressee_reads_roles_and_names(raw: object, choice: str) -> None:
    candidates = {"mira": "Mira", "tobias": "Tobias Grey"}
    assert validate_addressee(raw, candidates) == {"host": "mira", "guest": "tobias"}[choice]


def test_addressee_chooses_among_n_candidates_by_id_or_name() -> None:
    candidates = {"mira": "Mira", "tobias": "Tobias Grey", "oda": "Oda", "o2": "Oda Lim"}
    assert validate_addressee({"addressee": "tobias"}, candidates) == "tobias"
    assert validate_addressee({"addressee": "O2"}, candidates) == "o2"
    assert validate_addressee({"addressee": "Oda"}, candidates) == "mira"  # two answer to it
    assert validate_addressee({"addressee": "stranger"}, candidates) == "mira"
    assert addressee_schema(list(candidates))["properties"]["addressee"]["enum"] == list(
        candidates
    )


def test_addressee_prompt_names_every_candidate() -> None:
    system = addressee_prompt('"You there!"', {"mira": "Mira", "tobias": "Tobias", "oda": "Oda"})[
        0
    ].content
    assert "mira is Mira" in system and "oda is Oda" in system and "Mira is the host" in system


# --- interjection ---


@pytest.mark.parametrize(
    ("raw", "ranking"),
    [
        ({"ranking": ["oda", "Tobias"], "reason": "named"}, ("oda", "tobias")),
        ({"ranking": ["Oda", "oda", "stranger", 3]}, ("oda",)),
        ({"ranking": []}, ()),
        ({"speaker": "Tobias"}, ("tobias",)),
        ({"speaker": "nobody"}, ()),
        ('["tobias"]', ("tobias",)),
        ({"interject": True}, ()),  # a yes names nobody among several
        ("nonsense", ()),
        ({"ranking": None}, ()),
    ],
)
def test_the_interjection_ranking_keeps_known_witnesses_once_in_order(
    raw: object, ranking: tuple[str, ...]
) -> None:
    decision = validate_interjection(raw, {"tobias": "Tobias", "oda": "Oda Vance"})
    assert decision.ranking == ranking and decision.interject is bool(ranking)


@pytest.mark.parametrize(
    ("raw", "interject"),
    [({"interject": True}, True), ({"interject": "yes"}, True), ("true", True), ("maybe", False)],
)
def test_with_one_witness_a_clear_yes_names_it(raw: object, interject: bool) -> None:
    assert validate_interjection(raw, {"tobias": "Tobias"}).interject is interject


def test_interjection_reason_is_bounded_and_the_schema_lists_the_witnesses() -> None:
    decision = validate_interjection({"ranking": [], "reason": "r" * 1000}, {"oda": "Oda"})
    assert decision == InterjectionDecision((), "r" * 299 + "…")
    assert InterjectionDecision((), "") == INTERJECTION_DEFAULT
    schema = interjection_schema(["oda", "tobias"])
    assert schema["properties"]["ranking"]["items"]["enum"] == ["oda", "tobias"]


def test_interjection_prompt_has_every_witness_edges_and_what_was_said() -> None:
    messages = interjection_prompt(
        [
            Witness(MIRA, Edge("mira", "tobias", 20, 10, "", ()), None),
            Witness(Bot("oda", "Oda", "A pilot.", ""), None, None),
        ],
        "Tobias",
        "Ana",
        '"Is it haunted?"',
        "Tobias shivers.",
    )
    body = messages[1].content
    assert "affinity 20/100" in body and "no history yet" in body
    assert "Mira is present but was not addressed" in body and "A pilot." in body
    assert '"Is it haunted?"' in body and "Tobias shivers." in body
    assert "mira (Mira)" in messages[0].content and "oda (Oda)" in messages[0].content


# --- lifecycle ---


def test_lifecycle_keeps_known_legal_moves_once_each() -> None:
    raw = {
        "transitions": [
            {"event_id": 1, "status": "completed"},  # planned cannot complete
            {"event_id": 99999, "status": "active"},  # unknown
            {"event_id": "2", "status": "completed"},
            {"event_id": 2, "status": "cancelled"},  # second move of the same event
            {"event": "the festival", "status": "started"},  # by title, a synonym
            {"event_id": 3, "status": "active"},  # completed is final
            "garbage",
        ]
    }
    assert validate_lifecycle(raw, EVENTS) == (Transition(2, "completed"), Transition(1, "active"))


def test_lifecycle_transitions_are_plain_pairs() -> None:
    moves = validate_lifecycle('{"transitions": [{"event_id": 2, "status": "canceled"}]}', EVENTS)
    assert moves == ((2, "cancelled"),)
    assert validate_lifecycle([{"id": 1, "to": "active"}], EVENTS) == ((1, "active"),)
    assert validate_lifecycle("no", EVENTS) == ()
    assert (
        validate_lifecycle({"transitions": [{"event_id": True, "status": "active"}]}, EVENTS) == ()
    )


def test_lifecycle_is_needed_only_with_open_events() -> None:
    assert lifecycle_needed(EVENTS)
    assert not lifecycle_needed([EVENTS[2]])
    assert not lifecycle_needed([])
    prompt = lifecycle_prompt(EVENTS[:2], "The storm passes.")
    assert "id 2, active: The storm" in prompt[1].content


# --- scene close ---


@pytest.mark.parametrize(
    ("raw", "decision"),
    [
        ({"close": True, "new_location": "the docks"}, SceneCloseDecision(True, "the docks")),
        ({"close": True, "new_location": None}, SceneCloseDecision(True, None)),
        ({"close": True, "new_location": "gilded eel"}, SceneCloseDecision(True, None)),
        ({"close": True, "new_location": "null"}, SceneCloseDecision(True, None)),
        ({"close": False, "new_location": "the docks"}, SceneCloseDecision(False, None)),
        ({"close": "maybe"}, SceneCloseDecision(False, None)),
        ("yes", SceneCloseDecision(True, None)),
        ("who knows", SCENE_CLOSE_DEFAULT),
    ],
)
def test_scene_close_reads_a_clear_decision(raw: object, decision: SceneCloseDecision) -> None:
    assert validate_scene_close(raw, "The Gilded Eel") == decision


def test_scene_close_prompt_names_the_place() -> None:
    assert "The Gilded Eel" in scene_close_prompt("We leave.", "The Gilded Eel")[0].content


OOC_PROSE = '((secret note: Ana is the smuggler)) *I leave.* "Let us go, (you) two."'


@pytest.mark.parametrize(
    "build",
    [
        lambda prose: addressee_prompt(prose, {"mira": "Mira", "tobias": "Tobias"}),
        lambda prose: scene_close_prompt(prose, "The Gilded Eel"),
        lambda prose: interjection_prompt(WITNESSES, "Tobias", "Ana", prose, "-"),
    ],
    ids=["addressee", "scene_close", "interjection"],
)
def test_prompts_built_from_the_persons_prose_leave_its_ooc_out(
    build: Callable[[str], tuple[Any, ...]],
) -> None:
    text = "\n".join(message.content for message in build(OOC_PROSE))
    assert "smuggler" not in text and "secret note" not in text
    assert "*I leave.*" in text and '"Let us go, (you) two."' in text


# --- scene summary ---


def test_scene_summary_resolves_people_and_clamps() -> None:
    raw = {
        "summary": "  I gave Ana the leaky room.  " + "x" * 1000,
        "edge_summaries": {
            "ana": "Pays well.",
            "Tobias": "Meddling.",
            "Nobody": "?",
            "you": "dup",
        },
        "knowledge": [
            {"about": "Ana", "fact": "Needs a room"},
            {"about": "ANA", "fact": "needs a room"},
            {"about": "tobias", "fact": "Knows the room leaks"},
            {"about": "Ghost", "fact": "boo"},
            {"fact": "no one"},
        ],
    }
    result = validate_scene_summary(raw, OTHERS, TRANSCRIPT, "Mira")
    assert result.summary.startswith("I gave Ana the leaky room.") and len(result.summary) == 600
    assert dict(result.edge_summaries) == {"you": "Pays well.", "tobias": "Meddling."}
    assert dict(result.knowledge) == {
        "you": ("Needs a room",),
        "tobias": ("Knows the room leaks",),
    }


def test_scene_summary_falls_back_to_the_extractive_summary() -> None:
    result = validate_scene_summary("not json", OTHERS, TRANSCRIPT, "Mira")
    assert result == default_scene_summary(TRANSCRIPT, "Mira")
    assert result.summary == "Ana: Evening. / I: One left. / Tobias Grey: Take it."
    assert validate_scene_summary({"summary": ""}, OTHERS, TRANSCRIPT).summary.startswith("Ana:")
    assert isinstance(hash(result), int)


def test_extractive_summary_is_bounded_and_keeps_both_ends() -> None:
    lines = [f"Speaker{i}: Sentence number {i} is here. And more." for i in range(100)]
    text = extractive_summary(lines, location="The Gilded Eel")
    assert len(text) <= 600
    assert text.startswith("At The Gilded Eel: Speaker0: Sentence number 0 is here.")
    assert "Speaker99: Sentence number 99 is here." in text and "…" in text
    assert extractive_summary([]) == "nothing of note was said."


def test_scene_summary_prompt_is_the_witness_view() -> None:
    messages = scene_summary_prompt(MIRA, TRANSCRIPT, OTHERS, "The Gilded Eel")
    assert "first person as Mira" in messages[0].content
    assert "Ana, Tobias Grey" in messages[1].content and "It leaks." in messages[1].content


# --- every validator, on anything ---

json_like = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=20), inner, max_size=6)
    ),
    max_leaves=30,
)
keyed = st.fixed_dictionaries(
    {},
    optional={
        k: json_like
        for k in (
            "affinity_delta",
            "trust_delta",
            "knowledge_facts",
            "significance",
            "addressee",
            "interject",
            "reason",
            "transitions",
            "close",
            "new_location",
            "summary",
            "edge_summaries",
            "knowledge",
        )
    },
)
anything = st.one_of(json_like, keyed, keyed.map(json.dumps), st.binary(max_size=40))

VALIDATORS: dict[str, Callable[[Any], object]] = {
    "state_update": validate_state_update,
    "significance": validate_significance,
    "addressee": lambda raw: validate_addressee(raw, {"mira": "Mira", "tobias": "Tobias"}),
    "interjection": lambda raw: validate_interjection(raw, {"tobias": "Tobias"}),
    "lifecycle": lambda raw: validate_lifecycle(raw, EVENTS),
    "scene_close": lambda raw: validate_scene_close(raw, "here"),
    "scene_summary": lambda raw: validate_scene_summary(raw, OTHERS, TRANSCRIPT, "Mira"),
}


@given(anything)
def test_validators_never_raise_and_stay_in_range(raw: object) -> None:
    change = validate_state_update(raw)
    assert -10 <= change.affinity_delta <= 10 and -10 <= change.trust_delta <= 10
    assert len(change.knowledge_facts) <= 3 and all(
        0 < len(f) <= 200 for f in change.knowledge_facts
    )
    assert 0 <= validate_significance(raw) <= 3
    assert validate_addressee(raw, {"mira": "Mira", "tobias": "Tobias"}) in ("mira", "tobias")
    decision = validate_interjection(raw, {"tobias": "Tobias", "oda": "Oda"})
    assert set(decision.ranking) <= {"tobias", "oda"} and len(decision.reason) <= 300
    for move in validate_lifecycle(raw, EVENTS):
        assert (move.event_id, move.status) in {
            (1, "active"),
            (1, "cancelled"),
            (2, "completed"),
            (2, "cancelled"),
        }
    close = validate_scene_close(raw, "here")
    assert isinstance(close.close, bool)
    assert close.new_location is None or (close.close and 0 < len(close.new_location) <= 200)
    summary = validate_scene_summary(raw, OTHERS, TRANSCRIPT, "Mira")
    assert isinstance(summary, SceneSummaryResult) and 0 < len(summary.summary) <= 600
    assert set(summary.edge_summaries) <= set(OTHERS) and set(summary.knowledge) <= set(OTHERS)
    assert sum(len(v) for v in summary.knowledge.values()) <= 5


@given(anything)
def test_load_json_never_raises(raw: object) -> None:
    load_json(raw)


@pytest.mark.parametrize(
    "schema",
    [
        STATE_UPDATE_SCHEMA,
        SIGNIFICANCE_SCHEMA,
        ADDRESSEE_SCHEMA,
        INTERJECTION_SCHEMA,
        LIFECYCLE_SCHEMA,
        SCENE_CLOSE_SCHEMA,
        SCENE_SUMMARY_SCHEMA,
    ],
)
def test_schemas_are_json_objects_with_required_keys(schema: dict[str, Any]) -> None:
    assert json.loads(json.dumps(schema)) == schema
    assert schema["type"] == "object"
    assert schema["required"] and set(schema["required"]) <= set(schema["properties"])


def test_every_validator_is_exercised() -> None:
    assert all(VALIDATORS[name]("garbage") is not None for name in VALIDATORS)
    assert VALIDATORS["state_update"]("garbage") == STATE_UPDATE_DEFAULT
