"""Who the user is talking to: name rules first, the classifier only when they can't tell."""

from __future__ import annotations

import re
from typing import Literal

from protocol import Bot

Decision = Literal["host", "guest", "ask"]

# Second-person cues that address someone without naming them.
_ADDRESS = re.compile(
    r"\b(you|your|yours|yourself|y'all|both of you|either of you|hey|oi|friend|mate|"
    r"sir|madam|miss|old man|barkeep|love|dear)\b",
    re.IGNORECASE,
)


def _named(prose: str, name: str) -> bool:
    """Whole-word, case-insensitive: the full name, or its first word."""
    candidates = {name.strip()}
    first = name.strip().split()[0] if name.strip() else ""
    if len(first) >= 3:
        candidates.add(first)
    for candidate in candidates:
        if candidate and re.search(
            rf"(?<![\w]){re.escape(candidate)}(?![\w])", prose, re.IGNORECASE
        ):
            return True
    return False


def addressee_by_rules(prose: str, host: Bot, guest: Bot | None) -> Decision:
    """``host`` or ``guest`` when the names decide; ``ask`` when only the classifier can."""
    if guest is None:
        return "host"
    host_named = _named(prose, host.name)
    guest_named = _named(prose, guest.name)
    if guest_named and not host_named:
        return "guest"
    if host_named and not guest_named:
        return "host"
    if host_named and guest_named:
        return "ask"
    return "ask" if _ADDRESS.search(prose) else "host"
