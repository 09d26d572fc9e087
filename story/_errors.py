"""The errors of the story layer.

Story functions never raise on anything a model or a person wrote: bad
model output becomes a classifier's safe default, odd prose becomes odd
segments. What does raise is a caller handing in settings that cannot
work, which is a bug of ours (or of the configuration), not of the story.
"""

from __future__ import annotations


class StoryError(Exception):
    """Base of the errors raised by :mod:`story`: always the caller's mistake."""


class BudgetError(StoryError, ValueError):
    """Token budgets that no prompt can meet (soft above hard, hard too small)."""
