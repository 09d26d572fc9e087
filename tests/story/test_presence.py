"""Presence in the story: who the prose moves, and the turns each witness saw."""

from __future__ import annotations

import pytest

from protocol import Turn
from story import PresenceMove, presence_by_rules
from story._turn_io import seen_by

NAMES = {"mira": "Mira", "ada": "Ada", "tobin": "Tobin"}


@pytest.mark.parametrize(
    ("prose", "moves"),
    [
        ("Tobin leaves.", [("tobin", False)]),
        ("*Ada walks in, shaking off the rain.*", [("ada", True)]),
        ("Ada leaves the room. Tobin comes back.", [("ada", False), ("tobin", True)]),
        ("Tobin walks out the door", [("tobin", False)]),
        ("Tobin leaves, then Tobin returns.", [("tobin", True)]),
        ("Ada doesn't leave.", []),
        ("Ada walks to the bar.", []),
        ("Mira, where did Ada go?", []),
        ("Ada left her cup behind.", []),
        ("I leave.", []),
    ],
)
def test_the_prose_moves_named_characters(prose: str, moves: list[tuple[str, bool]]) -> None:
    assert presence_by_rules(prose, NAMES) == tuple(PresenceMove(c, p) for c, p in moves)


def turn(event_id: int) -> Turn:
    return Turn(event_id, "user", "you", f"line {event_id}", False, None, event_id)


def test_a_witness_sees_only_the_turns_it_was_present_for() -> None:
    dialogue = (turn(1), turn(2), turn(3))
    witnessed = ((1, ("mira", "ada", "you")), (2, ("mira", "you")))
    assert [t.event_id for t in seen_by(dialogue, witnessed, "ada")] == [1, 3]
    assert [t.event_id for t in seen_by(dialogue, witnessed, "mira")] == [1, 2, 3]
