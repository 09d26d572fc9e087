"""Scene close by rules: phrases, locations, and when only the classifier can tell."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from story import Close, NoClose, Unsure, same_place, scene_close_by_rules

HERE = "The Gilded Eel"


@pytest.mark.parametrize(
    "prose",
    [
        '"Goodnight, both of you." *I head upstairs.* Fade out.',
        '"We are done here." *I leave.* Fade to black.',
        "((let’s fade out here))",
        "We’re done here.",
        "we're done here",
        "And the scene ends.",
        "END SCENE",
        "Cut to black.",
    ],
)
def test_closing_phrases_close_without_a_new_place(prose: str) -> None:
    ruling = scene_close_by_rules(prose, HERE)
    assert isinstance(ruling, Close) and ruling.new_location is None
    assert ruling.reason.startswith("closing phrase")


@pytest.mark.parametrize(
    ("prose", "place"),
    [
        ('"Come on, Mira. We head to the docks."', "the docks"),
        ("*walks into the Rusty Anchor*", "the Rusty Anchor"),
        ("Meanwhile, at the harbour, gulls cry.", "the harbour"),
        ("[[location: The Lighthouse]]", "The Lighthouse"),
        ("((location: Old Mill))", "Old Mill"),
        ("They ride to Port Royal and rest.", "Port Royal"),
        ("Cut to the lighthouse.", "the lighthouse"),
        ("We go home.", "home"),
        ("We arrive at the old chapel at dawn.", "the old chapel"),
        ("*sets off for the northern pass*", "the northern pass"),
        ("Let’s head to the market.", "the market"),
    ],
)
def test_explicit_moves_close_and_name_the_place(prose: str, place: str) -> None:
    reason = "location marker" if "location:" in prose else f"location change to {place}"
    assert scene_close_by_rules(prose, HERE) == Close(reason, place)


def test_a_phrase_and_a_move_close_with_the_new_place() -> None:
    ruling = scene_close_by_rules("Fade out. Meanwhile, at the harbour...", HERE)
    assert ruling == Close('closing phrase "fade out"', "the harbour")


@pytest.mark.parametrize(
    "prose",
    [
        "*walks into the Gilded Eel*",  # already there
        "We head back to the gilded eel.",
        "[[location: the Gilded Eel]]",
        "I walk to the bar.",  # inside the scene
        "I go to sleep.",  # not a place
        "don't fade out yet",
        "We won't head to the docks.",
        '*Morning.* "Coffee?"',
        "On the left there is a door.",
        "Nice weather.",
    ],
)
def test_nothing_that_ends_the_scene(prose: str) -> None:
    assert scene_close_by_rules(prose, HERE) == NoClose()


@pytest.mark.parametrize(
    "prose",
    [
        "Tobias left?",
        "*I leave.*",
        "We head out.",
        "They arrive.",
        "Let's go.",
        "We should go to the docks.",
        "Shall we head to the docks?",
        "I walk over to Mira.",
        "We travel for days.",
    ],
)
def test_fuzzy_movement_is_unsure(prose: str) -> None:
    assert isinstance(scene_close_by_rules(prose, HERE), Unsure)


def test_no_current_location_is_fine() -> None:
    assert scene_close_by_rules("We head to the docks.", None) == Close(
        "location change to the docks", "the docks"
    )


def test_same_place_ignores_case_articles_and_spacing() -> None:
    assert same_place("the  Gilded eel", "The Gilded Eel")
    assert not same_place("the docks", "The Gilded Eel")


@given(st.text(max_size=300))
def test_rules_never_raise(prose: str) -> None:
    ruling = scene_close_by_rules(prose, HERE)
    assert isinstance(ruling, Close | NoClose | Unsure)
    if isinstance(ruling, Close) and ruling.new_location is not None:
        assert 0 < len(ruling.new_location) <= 200


def test_location_names_are_bounded_like_the_protocols() -> None:
    from protocol._limits import MAX_LOCATION as PROTOCOL_MAX
    from story._scene_rules import MAX_LOCATION

    assert MAX_LOCATION == PROTOCOL_MAX
    ruling = scene_close_by_rules("[[location: " + "x" * 500 + "]]", HERE)
    assert isinstance(ruling, Close) and ruling.new_location is not None
    assert len(ruling.new_location) <= PROTOCOL_MAX
