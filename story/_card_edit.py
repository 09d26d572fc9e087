"""Editing a card's main fields by hand, keeping everything else of its document.

The person edits what a card says (its description, its first message...)
in troupe; the card stays the document it came in, with every other field,
every unknown key and every ``extensions`` value where it was, so that
exporting it gives back the original but for the fields edited.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from ._cards import Card, read_card_json
from ._formats import CardError, dump_json

EDITABLE: Final = (
    "description",
    "personality",
    "scenario",
    "first_mes",
    "mes_example",
    "system_prompt",
    "post_history_instructions",
)
"""The fields of a card that can be edited in troupe."""


def edit_card(card: Card, changes: Mapping[str, str]) -> Card:
    """``card`` with ``changes`` made to its editable fields; the rest of its document kept.

    A V1 card's fields are at the top of its document; a V2 or V3 card's
    under ``data``. Raises :class:`CardError` (``bad_card``) for a field
    that cannot be edited.
    """
    unknown = sorted(set(changes) - set(EDITABLE))
    if unknown:
        raise CardError(
            "bad_card",
            f"{', '.join(unknown)} cannot be edited; editable are {', '.join(EDITABLE)}",
        )
    doc = card.original()
    target = doc if card.spec == "v1" else doc.get("data")
    if not isinstance(target, dict):
        raise CardError("bad_card", "the card's data is not an object")
    for name in EDITABLE:
        if name in changes:
            target[name] = changes[name]
    return read_card_json(dump_json(doc))
