"""The engine's settings refuse budgets that cannot work, with a clear error."""

from __future__ import annotations

import pytest

from actors import Budgets


@pytest.mark.parametrize(
    ("changes", "said"),
    [
        ({"soft": 0}, "soft"),
        ({"max_tokens": -1}, "max_tokens"),
        ({"recent_turns": -1}, "recent_turns"),
        ({"temperature": -0.5}, "temperature"),
        ({"soft": 900, "hard": 800}, "below the soft one"),
    ],
)
def test_a_budget_that_cannot_work_is_refused(changes: dict[str, float], said: str) -> None:
    with pytest.raises(ValueError, match=said):
        Budgets(**changes)  # type: ignore[arg-type]


def test_the_defaults_and_a_small_budget_are_taken() -> None:
    assert Budgets().hard >= Budgets().soft
    assert Budgets(soft=500, hard=800, recent_turns=1, relevant_memories=0).soft == 500
