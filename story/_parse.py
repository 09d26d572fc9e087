"""Parsing the user's prose into segments, deterministically.

Marks: ``((ooc))`` out of character; ``"dialogue"`` and curly “dialogue”;
``*action*``; everything else is narration. Rules for the unruly:

- An OOC block runs to its matching ``))``; nested ``((…))`` inside it stay
  part of it. An unclosed ``((`` runs to the end of the prose.
- An unclosed quote or ``*`` is not a mark: the character stays in the text
  of the surrounding narration (so a stray apostrophe-like quote never eats a
  paragraph).
- Marks inside a segment of another kind are text (``*"Hi"*`` is an action
  whose text is ``"Hi"``).
- Whitespace-only pieces are dropped; segment text is trimmed.
"""

from __future__ import annotations

from protocol import Segment

_QUOTES = {'"': '"', "“": "”", "”": "”"}


def _ooc_end(prose: str, start: int) -> int:
    """Index just past the ``))`` that closes the ``((`` at ``start``, or len(prose)."""
    depth = 0
    i = start
    while i < len(prose) - 1:
        pair = prose[i : i + 2]
        if pair == "((":
            depth += 1
            i += 2
            continue
        if pair == "))":
            depth -= 1
            i += 2
            if depth == 0:
                return i
            continue
        i += 1
    return len(prose)


def parse_prose(prose: str) -> tuple[Segment, ...]:
    """Split prose into dialogue, action, narration and OOC segments, in order."""
    segments: list[Segment] = []
    narration: list[str] = []

    def flush() -> None:
        text = "".join(narration).strip()
        narration.clear()
        if text:
            segments.append(Segment("narration", text))

    def add(kind: str, text: str) -> None:
        flush()
        text = text.strip()
        if text:
            segments.append(Segment(kind, text))  # type: ignore[arg-type]

    i = 0
    n = len(prose)
    while i < n:
        char = prose[i]
        if prose.startswith("((", i):
            end = _ooc_end(prose, i)
            inner_end = end - 2 if prose.endswith("))", 0, end) and end - 2 >= i + 2 else end
            add("ooc", prose[i + 2 : inner_end])
            i = end
            continue
        if char in _QUOTES and char != "”":
            close = prose.find(_QUOTES[char], i + 1)
            if close != -1:
                add("dialogue", prose[i + 1 : close])
                i = close + 1
                continue
        if char == "*":
            close = prose.find("*", i + 1)
            if close != -1:
                add("action", prose[i + 1 : close])
                i = close + 1
                continue
        narration.append(char)
        i += 1
    flush()
    return tuple(segments)


def prose_for_model(segments: tuple[Segment, ...]) -> str:
    """The prose the characters hear: every segment but OOC, marks restored, in order."""
    parts = []
    for segment in segments:
        if segment.kind == "dialogue":
            parts.append(f'"{segment.text}"')
        elif segment.kind == "action":
            parts.append(f"*{segment.text}*")
        elif segment.kind == "narration":
            parts.append(segment.text)
    return " ".join(parts)
