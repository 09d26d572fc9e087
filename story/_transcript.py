"""Turning a chat's turns into lines a model may read."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from protocol import YOU_ID, Turn

from ._parse import strip_ooc


def turn_text(turn: Turn) -> str:
    """A turn's text as a model may read it: a user turn loses its OOC notes."""
    if turn.kind == "user":
        return strip_ooc(turn.text)
    return turn.text.strip()


def speaker_name(speaker_id: str, names: Mapping[str, str]) -> str:
    """The display name for ``speaker_id``; unknown ids show as themselves."""
    name = names.get(speaker_id)
    if name:
        return name
    return "You" if speaker_id == YOU_ID else speaker_id


def transcript_lines(turns: Iterable[Turn], names: Mapping[str, str]) -> tuple[str, ...]:
    """``"Name: text"`` for every turn with something to read, OOC removed, in order.

    The form classifier prompts and scene summaries take their dialogue in.
    """
    lines = []
    for turn in turns:
        text = turn_text(turn)
        if text:
            lines.append(f"{speaker_name(turn.speaker_id, names)}: {text}")
    return tuple(lines)
