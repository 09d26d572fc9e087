"""Per-witness memories, the auto-pin plan, and edge bounds."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from protocol import Bot, Edge, Memory, Turn
from story import (
    MAX_POV_MEMORY,
    PinPlan,
    auto_pin_plan,
    clamp_edge,
    describe_edge,
    edge_words,
    pov_memory,
    transcript_lines,
)

MIRA = Bot("mira", "Mira", "", "")
TOBIAS = Bot("tobias", "Tobias", "", "")


def test_the_speaker_remembers_answering() -> None:
    text = pov_memory(MIRA, "Ana", '"My brother drowned here."', "Mira", "Mira goes still.")
    assert text == 'Ana said: "My brother drowned here."\nI answered: Mira goes still.'


def test_a_silent_witness_remembers_who_answered() -> None:
    text = pov_memory(TOBIAS, "Ana", '"Hello."', "Mira", "Mira nods.")
    assert text == 'Ana said: "Hello."\nMira answered: Mira nods.'


def test_empty_sides_are_said_plainly() -> None:
    assert pov_memory(MIRA, "Ana", "", "Mira", "") == "I said nothing."
    assert pov_memory(TOBIAS, "Ana", "", "Mira", "Hm.") == "Mira answered: Hm."


@given(st.text(), st.text(), st.text(), st.text())
def test_pov_memory_is_bounded(user: str, prose: str, speaker: str, beat: str) -> None:
    assert len(pov_memory(MIRA, user, prose, speaker, beat)) <= MAX_POV_MEMORY


def mem(memory_id: int, significance: int, pinned: bool = False) -> Memory:
    return Memory(memory_id, "mira", "c", f"m{memory_id}", significance, pinned)


def test_only_a_three_pins() -> None:
    assert auto_pin_plan(mem(9, 2), []) == PinPlan(False, ())
    assert auto_pin_plan(mem(9, 3), []) == PinPlan(True, ())
    assert auto_pin_plan(mem(9, 3, pinned=True), []) == PinPlan(False, ())


def test_over_the_cap_the_least_significant_then_oldest_goes() -> None:
    pins = [mem(1, 3), mem(2, 2), mem(3, 3), mem(4, 2)]
    assert auto_pin_plan(mem(9, 3), pins, cap=4) == PinPlan(True, (2,))
    assert auto_pin_plan(mem(9, 3), pins, cap=3) == PinPlan(True, (2, 4))
    assert auto_pin_plan(mem(9, 3), [mem(5, 3), mem(1, 3)], cap=2) == PinPlan(True, (1,))
    pin, evict = auto_pin_plan(mem(9, 3), pins, cap=8)
    assert (pin, evict) == (True, ())


def test_the_new_memory_is_never_evicted_and_not_counted_twice() -> None:
    assert auto_pin_plan(mem(9, 3), [mem(9, 3), mem(1, 3)], cap=2) == PinPlan(True, ())
    assert auto_pin_plan(mem(9, 3), [mem(1, 3)], cap=0) == PinPlan(True, (1,))


@given(st.floats(allow_nan=True, allow_infinity=True))
def test_clamp_edge_stays_in_range(value: float) -> None:
    result = clamp_edge(value)
    assert 0 <= result <= 100
    if math.isfinite(value) and 0 <= value <= 100:
        assert abs(result - value) <= 0.5


def test_clamp_edge_rounds_and_clamps() -> None:
    assert [clamp_edge(v) for v in (-5, 12.5, 49.4, 101, math.inf, -math.inf, math.nan)] == [
        0,
        13,
        49,
        100,
        100,
        0,
        50,
    ]


def test_edges_in_words_and_numbers() -> None:
    assert edge_words(10, 90) == "hostile (affinity 10/100), wholly trusting (trust 90/100)"
    edge = Edge("mira", "you", 55, 45, "Owes me.", ("Sails", ""))
    assert describe_edge(edge) == (
        "neutral (affinity 55/100), undecided (trust 45/100). Owes me. Known: Sails"
    )
    assert describe_edge(edge, details=False).endswith("(trust 45/100)")


def test_transcript_lines_resolve_names_and_drop_ooc() -> None:
    turns = [
        Turn(1, "user", "you", '((psst)) "Hi."', False, None, 1),
        Turn(2, "assistant", "mira", "Hello.", False, None, 1),
        Turn(3, "assistant", "ghost", "  ", True, None, 1),
    ]
    assert transcript_lines(turns, {"you": "Ana", "mira": "Mira"}) == (
        'Ana: "Hi."',
        "Mira: Hello.",
    )
