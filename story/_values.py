"""Tolerant readers for classifier output: anything in, a sane value out, never an error."""

from __future__ import annotations

import math
from typing import Any


def as_int(value: Any, default: int = 0) -> int:
    """An int from an int, a float (rounded) or a numeric string; else ``default``."""
    if isinstance(value, bool):
        return default
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return round(value) if math.isfinite(value) else default
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return default
        return round(number) if math.isfinite(number) else default
    return default


def clamp(value: int, low: int, high: int) -> int:
    """``value`` within ``low..high``."""
    return max(low, min(high, value))


def as_bool(value: Any, default: bool = False) -> bool:
    """A bool from a bool or the usual words; else ``default``."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        word = value.strip().lower()
        if word in ("true", "yes", "1"):
            return True
        if word in ("false", "no", "0"):
            return False
    return default


def as_text(value: Any, limit: int) -> str:
    """A trimmed string of at most ``limit`` characters, or empty."""
    if not isinstance(value, str):
        return ""
    text = " ".join(value.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def as_texts(value: Any, count: int, limit: int) -> tuple[str, ...]:
    """At most ``count`` distinct non-empty short strings."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple):
        return ()
    out: list[str] = []
    for item in value:
        text = as_text(item, limit)
        if text and text not in out:
            out.append(text)
        if len(out) == count:
            break
    return tuple(out)
