"""What a rewind would move to a branch, said in plain words rather than event kinds."""

from __future__ import annotations

from collections.abc import Mapping

_COUNTED = (
    (("user_turn", "user_turn_edit", "assistant_turn"), "turn", "turns"),
    (("memory_written",), "memory", "memories"),
    (("edge_update",), "relationship change", "relationship changes"),
    (("scene_opened",), "scene", "scenes"),
    (
        (
            "world_event_created",
            "world_event_started",
            "world_event_completed",
            "world_event_cancelled",
        ),
        "world event change",
        "world event changes",
    ),
    (("object_acquired",), "object", "objects"),
    (("cast_added", "cast_removed", "presence_changed"), "coming or going", "comings and goings"),
)


def rewind_summary(by_kind: Mapping[str, int]) -> str:
    """E.g. "3 turns, 2 memories and 1 relationship change move to a branch you can return to".

    Only what a person would name is counted; with nothing of that, the
    sentence says so.
    """
    parts = []
    for kinds, one, many in _COUNTED:
        count = sum(by_kind.get(kind, 0) for kind in kinds)
        if count:
            parts.append(f"{count} {one if count == 1 else many}")
    if not parts:
        return "Nothing would move: the chat is already there."
    listed = parts[0] if len(parts) == 1 else f"{', '.join(parts[:-1])} and {parts[-1]}"
    verb = "moves" if len(parts) == 1 and parts[0].startswith("1 ") else "move"
    return f"{listed} {verb} to a branch you can return to"
