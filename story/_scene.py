"""Scene close by rules: closing phrases and explicit moves, read from the user's prose.

Rules come first because they are free and certain. Only prose that talks of
leaving or arriving without a place the rules can name is ``Unsure``, and only
then is the scene-close classifier asked. OOC counts: ``((let's fade out))``
closes.
"""

from __future__ import annotations

import re

import attrs

_CLOSING = re.compile(
    r"\b(fade\s+(?:out|to\s+black)|we['’]?re\s+done\s+here|we\s+are\s+done\s+here|"
    r"the\s+scene\s+ends|end\s+(?:of\s+)?(?:the\s+)?scene|scene\s+end|cut\s+to\s+black)\b",
    re.IGNORECASE,
)

_PLACE = r"(?P<place>(?:the\s+)?[A-Za-z’'][\w’' -]{1,60}?)"
_END = r"(?=[.!?,;:*\"”)]|\s+(?:and|to|with|for|where|while|as|before|after)\b|$)"

_MOVES = [
    re.compile(r"\[\[\s*location\s*:\s*(?P<place>[^\]]{1,80})\]\]", re.IGNORECASE),
    re.compile(
        r"\b(?:we|they|let['’]?s|you\s+and\s+i)\s+(?:all\s+)?"
        r"(?:head|go|walk|move|travel|ride|sail|run|hurry|set\s+off|make\s+our\s+way|make\s+my\s+way)"
        r"\s+(?:over\s+|back\s+|down\s+|up\s+|out\s+)?(?:to|into|towards|toward)\s+" + _PLACE + _END,
        re.IGNORECASE,
    ),
    re.compile(
        r"\b(?:walks?|heads?|goes|steps?|moves?|arrives?|arrive)\s+(?:in(?:to)?|at|to)\s+"
        + _PLACE + _END,
        re.IGNORECASE,
    ),
    re.compile(r"\b(?:meanwhile|later),?\s+(?:at|in)\s+" + _PLACE + _END, re.IGNORECASE),
]

_FUZZY = re.compile(
    r"\b(leave|leaves|leaving|left|depart|departs|head\s+out|heads\s+out|set\s+off|"
    r"go\s+somewhere|elsewhere|walk\s+away|walks\s+away|next\s+morning|hours\s+later|"
    r"time\s+passes)\b",
    re.IGNORECASE,
)


@attrs.frozen
class Close:
    """The rules close the scene; ``new_location`` when they also name the next place."""

    reason: str
    new_location: str | None = None


@attrs.frozen
class NoClose:
    """The rules see nothing that ends the scene."""


@attrs.frozen
class Unsure:
    """Talk of moving on without a place the rules can name: ask the classifier."""


def _place(match: re.Match[str]) -> str:
    place = " ".join(match.group("place").split()).strip(" '’")
    return place


def scene_close_by_rules(prose: str, current_location: str | None) -> Close | NoClose | Unsure:
    """Decide from the user's prose alone whether the scene ends."""
    closing = _CLOSING.search(prose)
    for pattern in _MOVES:
        move = pattern.search(prose)
        if move is None:
            continue
        place = _place(move)
        if place and (current_location is None or place.lower() != current_location.lower()):
            return Close(f"moved to {place}", place)
    if closing is not None:
        return Close(f"closing phrase: {closing.group(0).lower()}")
    if _FUZZY.search(prose):
        return Unsure()
    return NoClose()
