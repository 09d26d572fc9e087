"""A chat's sampler settings: how its beats are sampled, and the bounds each setting keeps.

Every setting is optional: ``None`` leaves the backend's own default. The
bounds are the domain's, applied by the engine (a value out of bounds is
``invalid``, nothing written) and again by the store (an event out of
bounds never lands in the log).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from attrs import fields, frozen


@frozen
class ChatSettings:
    """How a chat's beats are sampled; ``None``: the backend's default (an addition)."""

    temperature: float | None = None
    """Randomness of the next token: 0 always takes the likeliest."""
    top_p: float | None = None
    """Sample only from the likeliest tokens whose probabilities add up to this."""
    min_p: float | None = None
    """Drop tokens less likely than this share of the likeliest one's probability."""
    repeat_penalty: float | None = None
    """How much a token already in the reply costs (1: nothing; the embedded model only)."""
    max_tokens: int | None = None
    """The longest beat, in the model's tokens."""

    def merged(self, changes: ChatSettings) -> ChatSettings:
        """These settings with every setting ``changes`` gives replaced."""
        values = {
            f.name: getattr(changes, f.name)
            if getattr(changes, f.name) is not None
            else getattr(self, f.name)
            for f in fields(ChatSettings)
        }
        return ChatSettings(**values)


SAMPLER_BOUNDS: Mapping[str, tuple[float, float]] = {
    "temperature": (0.0, 2.0),
    "top_p": (0.01, 1.0),
    "min_p": (0.0, 1.0),
    "repeat_penalty": (1.0, 2.0),
    "max_tokens": (16, 2048),
}
"""The lowest and highest value of each setting, inclusive."""


def sampler_problem(settings: ChatSettings) -> str | None:
    """What is wrong with ``settings`` for a person to read, or ``None`` when all is well."""
    problems = []
    for name, (low, high) in SAMPLER_BOUNDS.items():
        value = getattr(settings, name)
        if value is None:
            continue
        if name == "max_tokens" and (isinstance(value, bool) or not isinstance(value, int)):
            problems.append(f"max_tokens must be a whole number from {int(low)} to {int(high)}")
        elif isinstance(value, bool) or not isinstance(value, int | float):
            problems.append(f"{name} must be a number from {low} to {high}")
        elif not math.isfinite(value) or not low <= value <= high:
            shown = f"{int(low)} to {int(high)}" if name == "max_tokens" else f"{low} to {high}"
            problems.append(f"{name} must be from {shown}, got {value}")
    return "; ".join(problems) or None


__all__ = ["SAMPLER_BOUNDS", "ChatSettings", "sampler_problem"]
