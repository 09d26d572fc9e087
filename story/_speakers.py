"""Lines a beat writes for someone else: where to cut them, as the text streams.

A small model playing one character drifts into a transcript: it opens a line
with the person's name (``Wren: "You don't trust me, do you?"``) and writes
their part too. A stop tag (``"\\nWren:"``) misses the other forms small models
write — ``- Wren:``, ``*Wren*:``, ``**Wren:**``, ``Wren (softly):``,
``[Wren]:``, ``> Wren:``, ``Wren - "..."`` — so the beat looks for every
line that opens like that and ends the text before it.

:func:`foreign_line` answers for a whole text; :class:`SpeakerGuard` answers
as the text arrives, holding back only what could still become such an
opening (the current line's first characters, and trailing whitespace), so
the text it lets through never needs taking back.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import Enum

from ._names import name_forms
from ._text import straighten

_OPENERS = frozenset(" \t\r>-–—*•+_~#\"'“”‘’[(")
"""What may come before a name at the start of a speaker line: indent, quote, bullet, markup."""
_CLOSERS = frozenset(" \t\r*_~\"'”’])")
"""What may come between the name and its separator: closing markup, brackets, spaces."""
_DASHES = frozenset("-–—")

MAX_OPENERS = 10
"""Characters of indent and markup before a name; past that, a line is prose."""
MAX_CLOSERS = 6
"""Characters of closing markup and spaces between a name and its separator."""
MAX_ASIDE = 60
"""Characters of a parenthesised aside between a name and its colon (``Wren (softly):``)."""


class _Verdict(Enum):
    NO = "no"
    MAYBE = "maybe"
    YES = "yes"


class _Names:
    """The forms of the other speakers' names, folded for comparison."""

    def __init__(self, others: Iterable[str], speaker: str = "") -> None:
        own = {form.casefold() for form in name_forms(speaker)}
        forms = {
            form
            for name in others
            for form in name_forms(name)
            if form.casefold() not in own and any(ch.isalnum() for ch in form)
        }
        self.forms = tuple(sorted(forms, key=len, reverse=True))

    def verdict(self, line: str, *, whole: bool) -> _Verdict:
        """Whether ``line`` opens another speaker's line (``MAYBE``: it may, once more comes).

        ``whole``: the line is complete (a newline or the end of the text follows),
        so a line that could still become an opening is not one.
        """
        line = straighten(line)
        start = 0
        while start < len(line) and line[start] in _OPENERS:
            start += 1
            if start > MAX_OPENERS:
                return _Verdict.NO
        if start == len(line):
            return _Verdict.NO if whole else _Verdict.MAYBE
        verdict = _Verdict.NO
        for form in self.forms:
            found = _after_name(line, start, form)
            if found is _Verdict.YES:
                return found
            if found is _Verdict.MAYBE:
                verdict = found
        if verdict is _Verdict.MAYBE and whole:
            return _Verdict.NO
        return verdict


def _same(a: str, b: str) -> bool:
    return a == b or a.lower() == b.lower() or a.casefold() == b.casefold()


def _after_name(line: str, at: int, name: str) -> _Verdict:
    """Whether ``line``, read from ``at``, is ``name`` and a speaker's separator."""
    for offset, expected in enumerate(name):
        i = at + offset
        if i == len(line):
            return _Verdict.MAYBE
        if not _same(line[i], expected):
            return _Verdict.NO
    i = at + len(name)
    if i < len(line) and line[i].isalnum():
        return _Verdict.NO  # only part of a longer word: "Wrenna", not "Wren"
    return _separator(line, i)


def _separator(line: str, i: int) -> _Verdict:
    """After the name: closing markup, an optional aside, then ``:`` or a spaced dash."""
    spaced = False
    aside = False
    closers = 0
    while i < len(line):
        ch = line[i]
        if ch == ":":
            return _Verdict.YES
        if ch in _DASHES:
            if not spaced:
                return _Verdict.NO  # "Wren-like" is a word, "Wren - " a tag
            if i + 1 == len(line):
                return _Verdict.MAYBE
            return _Verdict.YES if line[i + 1].isspace() else _Verdict.NO
        if ch == "(" and not aside:
            # The aside ends within MAX_ASIDE characters, or the line is prose.
            close = line.find(")", i + 1, i + 2 + MAX_ASIDE)
            if close < 0:
                return _Verdict.MAYBE if len(line) < i + 2 + MAX_ASIDE else _Verdict.NO
            aside, closers, i = True, 0, close + 1
            continue
        if ch not in _CLOSERS:
            return _Verdict.NO
        closers += 1
        if closers > MAX_CLOSERS:
            return _Verdict.NO
        spaced = spaced or ch.isspace()
        i += 1
    return _Verdict.MAYBE


def _rstrip_at(text: str, end: int) -> int:
    """Where the whitespace that runs back from ``end`` begins."""
    while end > 0 and text[end - 1].isspace():
        end -= 1
    return end


def foreign_line(text: str, others: Iterable[str], speaker: str = "") -> int | None:
    """Where ``text`` must end so that no line of it speaks for one of ``others``, or ``None``.

    A line speaks for someone when it opens with their name (the full name or
    the first name, any case, whole words) as a speaker tag: ``Name:``,
    ``- Name:``, ``*Name*:``, ``**Name:**``, ``Name (…):``, ``[Name]:``,
    ``> Name:``, ``"Name:``, ``Name - …``, after any indent. The answer is the
    start of the whitespace before the first such line (0 if the text opens
    with one), so what is kept never ends in a dangling newline. Forms of
    ``speaker``'s own name never count.
    """
    names = _Names(others, speaker)
    if not names.forms:
        return None
    start = 0
    while True:
        end = text.find("\n", start)
        line = text[start:] if end < 0 else text[start:end]
        if names.verdict(line, whole=True) is _Verdict.YES:
            return _rstrip_at(text, start)
        if end < 0:
            return None
        start = end + 1


class SpeakerGuard:
    """:func:`foreign_line` as text streams in: feed chunks, pass on what it returns.

    It holds back the current line while that line could still open another
    speaker's line (at most a name and its markup), and any trailing
    whitespace (the start of a cut is the whitespace before the line). Once
    a line does open another speaker's line, :attr:`cut` is set and nothing
    more passes; the caller stops the model there. What passes, joined, is
    the text up to :func:`foreign_line` of everything fed — however the text
    was split into chunks.
    """

    def __init__(self, others: Iterable[str], speaker: str = "") -> None:
        self._names = _Names(others, speaker)
        self._held = ""
        self._line: int | None = 0 if self._names.forms else None
        """Where the undecided current line starts in ``_held``; ``None`` once decided."""
        self.cut = False
        """Another speaker's line began: the text that passed is all there is."""

    def go_on_from(self, text: str) -> None:
        """The stream goes on from ``text``, shown already (``continue``): a line it left
        open is under way, not a new line that could open someone else's."""
        if text and not text.endswith("\n"):
            self._line = None

    @property
    def held(self) -> str:
        """The text received and not passed on yet."""
        return self._held

    def feed(self, chunk: str) -> str:
        """Take the next chunk; the text that may be shown now ("" once cut)."""
        if self.cut:
            return ""
        held = self._held
        for n, piece in enumerate(chunk.split("\n")):
            if n:
                if self._decide(held, whole=True):
                    return self._cut_at(held)
                held += "\n"
                self._line = len(held) if self._names.forms else None
            held += piece
            if self._decide(held, whole=False):
                return self._cut_at(held)
        keep = _rstrip_at(held, len(held))
        if self._line is not None:
            keep = min(keep, _rstrip_at(held, self._line))
        self._held = held[keep:]
        if self._line is not None:
            self._line -= keep
        return held[:keep]

    def flush(self) -> str:
        """The stream ended: whatever is held back, unless the text was cut."""
        if self.cut:
            return ""
        # A line that only could have become an opening is not one: it all passes.
        held, self._held, self._line = self._held, "", None
        return held

    def _decide(self, held: str, *, whole: bool) -> bool:
        """Judge the current line; True when it opens another speaker's line."""
        if self._line is None:
            return False
        verdict = self._names.verdict(held[self._line :], whole=whole)
        if verdict is _Verdict.NO:
            self._line = None
        return verdict is _Verdict.YES

    def _cut_at(self, held: str) -> str:
        assert self._line is not None
        keep = _rstrip_at(held, self._line)
        self.cut = True
        self._held = held[keep:]
        self._line = None
        return held[:keep]


_ATTACHES = frozenset(",.;:!?)]}…'’”-—")
"""Marks a continuation may open with that join the word before them, with no space."""


def join_continuation(before: str, opening: str) -> str:
    """The opening of a beat's continuation as it joins the beat's text ``before``.

    When ``before`` does not end in whitespace, the continuation's leading
    whitespace is kept as one space (a newline as a line break), and one
    that opens without any gets a space (``"down."`` and ``"She smiles"`` read
    ``"down. She smiles"``), unless it opens with a mark that closes what came
    before (``,``, ``.``, ``)``, or a quote the beat left open).
    """
    text = opening.lstrip()
    if not text or not before or before[-1].isspace():
        return text
    lead = opening[: len(opening) - len(text)]
    if "\n" in lead:
        return "\n" + text
    if lead:
        return " " + text
    closes_quote = text[0] == '"' and before.count('"') % 2 == 1
    if text[0] in _ATTACHES or closes_quote:
        return text
    return " " + text
