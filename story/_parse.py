"""The prose parser: the user's prose as dialogue, action, narration and OOC segments.

The marks:

- ``((out of character))`` — a note from the author to the system. It is
  recognised everywhere, even inside dialogue or action, so an OOC note can
  never leak into what the model reads. Single parentheses inside it nest:
  ``((see (this) one))`` is one note. It ends at the first ``))`` that is
  not closing one of those inner parentheses.
- ``"dialogue"`` and ``“dialogue”`` — opened by ``"`` or ``“`` and closed by
  the next ``"`` or ``”`` (phones mix the two). A quote inside dialogue is
  not nested: the first closing mark ends it. Asterisks inside dialogue are
  emphasis and stay in its text.
- ``*action*`` — a run of asterisks is one mark, so ``**bold**`` is an action
  too. Dialogue inside an action splits it: ``*says "hi" and waves*`` is the
  action "says", the dialogue "hi", then the action "and waves".
- Everything else is narration.

An unclosed mark runs to the end of its paragraph (a blank line), where
every open mark ends and narration resumes. A closing mark with nothing to
close (a stray ``”`` or ``))``) is ordinary text. Segment texts are trimmed,
keep their inner whitespace, and never contain the marks that delimit them;
whitespace-only pieces are dropped. Parsing is linear and never raises.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from protocol import Segment, SegmentKind

_OPEN_QUOTES = frozenset('"“')
_CLOSE_QUOTES = frozenset('"”')
_BLANK_LINE = re.compile(r"\n[^\S\n]*\n")
_STARS = re.compile(r"\*+")


class _Scanner:
    """One pass over the prose, keeping a stack of open marks."""

    def __init__(self, prose: str) -> None:
        self.prose = prose
        self.stack: list[SegmentKind] = []
        self.ooc_depth = 0  # unmatched single "(" inside the open OOC note
        self.start = 0
        self.spans: list[tuple[SegmentKind, int, int]] = []

    @property
    def kind(self) -> SegmentKind:
        return self.stack[-1] if self.stack else "narration"

    def flush(self, end: int) -> None:
        if self.start < end:
            self.spans.append((self.kind, self.start, end))

    def push(self, kind: SegmentKind, at: int, width: int) -> int:
        self.flush(at)
        self.stack.append(kind)
        self.start = at + width
        return self.start

    def pop(self, at: int, width: int) -> int:
        self.flush(at)
        self.stack.pop()
        self.start = at + width
        return self.start

    def run(self) -> list[tuple[SegmentKind, int, int]]:
        prose, n, i = self.prose, len(self.prose), 0
        while i < n:
            c = prose[i]
            if c == "\n" and self.stack:
                blank = _BLANK_LINE.match(prose, i)
                if blank is not None:
                    # A paragraph ends every mark left open in it.
                    self.flush(i)
                    self.stack.clear()
                    self.ooc_depth = 0
                    self.start = i
                    i = blank.end()
                    continue
            kind = self.kind
            if kind == "ooc":
                i = self._in_ooc(i)
            elif prose.startswith("((", i):
                self.ooc_depth = 0
                i = self.push("ooc", i, 2)
            elif kind == "dialogue":
                i = self.pop(i, 1) if c in _CLOSE_QUOTES else i + 1
            elif c in _OPEN_QUOTES:
                i = self.push("dialogue", i, 1)
            elif c == "*":
                stars = _STARS.match(prose, i)
                width = stars.end() - i if stars is not None else 1
                i = self.pop(i, width) if kind == "action" else self.push("action", i, width)
            else:
                i += 1
        self.flush(n)
        return self.spans

    def _in_ooc(self, i: int) -> int:
        prose = self.prose
        c = prose[i]
        if c == "(":
            self.ooc_depth += 1
        elif c == ")":
            if self.ooc_depth > 0:
                self.ooc_depth -= 1
            elif prose.startswith("))", i):
                return self.pop(i, 2)
        return i + 1


def parse_prose(prose: str) -> tuple[Segment, ...]:
    """Split the user's prose into dialogue, action, narration and OOC segments, in order.

    Deterministic and cheap, so the turn spends no model call before the
    first token. See the module docstring for how marks, nesting and
    unclosed marks are read.
    """
    segments: list[Segment] = []
    for kind, start, end in _Scanner(prose).run():
        text = prose[start:end].strip()
        if text:
            segments.append(Segment(kind, text))
    return tuple(segments)


def prose_for_model(segments: Iterable[Segment]) -> str:
    """The prose the narrative model may read: every segment but OOC, in order, with marks.

    Dialogue is put back in straight double quotes and actions between
    asterisks so the model still sees who says and who does; OOC notes
    are for the system and never reach the model.
    """
    parts: list[str] = []
    for segment in segments:
        if segment.kind == "dialogue":
            parts.append(f'"{segment.text}"')
        elif segment.kind == "action":
            parts.append(f"*{segment.text}*")
        elif segment.kind == "narration":
            parts.append(segment.text)
    return " ".join(parts)


def strip_ooc(prose: str) -> str:
    """``prose`` as the model may read it: parsed, without OOC, re-marked."""
    return prose_for_model(parse_prose(prose))
