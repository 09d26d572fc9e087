"""The scene-close classifier: for prose the rules were unsure about.

Called only when :func:`scene_close_by_rules` answers :class:`Unsure`,
once per turn, after the beats. Safe default: the scene goes on.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from attrs import frozen

from .._messages import PromptMessage
from .._parse import strip_ooc
from .._scene_rules import MAX_LOCATION, same_place
from ._coerce import as_bool, as_text, field, load_json

_NO_PLACE = frozenset({"", "null", "none", "same", "unknown", "n/a", "-", "nowhere"})


@frozen
class SceneCloseDecision:
    """Whether the scene ends, and where the next one opens (``None``: same place)."""

    close: bool = False
    new_location: str | None = None


SCENE_CLOSE_DEFAULT = SceneCloseDecision()

SCENE_CLOSE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "close": {"type": "boolean"},
        "new_location": {"type": ["string", "null"], "maxLength": MAX_LOCATION},
    },
    "required": ["close", "new_location"],
    "additionalProperties": False,
}
"""The JSON the scene-close classifier is asked for (read-only)."""


def scene_close_prompt(prose: str, location: str | None) -> tuple[PromptMessage, ...]:
    """Messages asking whether ``prose`` ends the scene at ``location``, and where it goes.

    ``prose`` is the person's prose as written; its OOC notes are removed here
    (the rules read them, the model never does).
    """
    where = location or "an unnamed place"
    system = (
        f"You direct a story. The current scene is at {where}. Decide whether the person's "
        f"latest prose ends this scene: the characters leave for somewhere else, time jumps "
        f"ahead, or the person wraps the scene up. Moving within the same place does not end "
        f"it. Reply with JSON only, in this form:\n"
        f'{{"close": false, "new_location": null}}\n'
        f"new_location: the place the story moves to, in a few words, or null if unknown "
        f"or unchanged."
    )
    return (PromptMessage("system", system), PromptMessage("user", strip_ooc(prose)))


def validate_scene_close(raw: object, current_location: str | None = None) -> SceneCloseDecision:
    """Read the decision: close only on a clear yes; a place equal to the current one is none."""
    data = load_json(raw)
    if not isinstance(data, Mapping):
        return SceneCloseDecision(as_bool(data), None)
    close = as_bool(field(data, "close", "closes", "end", "ends"))
    place = as_text(field(data, "new_location", "location", "to"), MAX_LOCATION) if close else ""
    if place.casefold() in _NO_PLACE or (current_location and same_place(place, current_location)):
        return SceneCloseDecision(close, None)
    return SceneCloseDecision(close, place)
