"""Lore activation: which entries of which books enter a prompt, as a pure function of text.

:func:`activate` is given the books that apply and the messages to scan,
oldest first. Witness scoping is the caller's half of the contract: for
character X's prompt it passes only the messages X witnessed, and only the
shared books plus X's own card book, so lore can never be woken by
something X did not see, and X's book never reaches anyone else.

The rules, in order: a disabled entry or one with empty content never
activates; a V3 ``@@dont_activate`` stops it and ``@@activate`` forces it;
a constant entry always activates; otherwise one of its keys must match
the last ``scan_depth`` messages (the entry's own depth, else its book's,
else all of them) and, for a selective entry, its secondary keys must pass
its logic (AND ANY, AND ALL, NOT ANY, NOT ALL). With recursive scanning,
the content of what activated is scanned again for the book's entries, at
most :data:`MAX_RECURSION` more times. Finally each book's
``token_budget``, then the caller's budget, drop the lowest priority
first (``priority``, else ``insertion_order``; lower goes first).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Literal

from attrs import frozen

from ._lore import Lorebook, LoreEntry, Position, regex_problem, split_regex
from ._text import estimate_tokens

MAX_RECURSION = 3
"""How many times activated content is scanned again, at most, when a book asks for it."""

Cause = Literal["constant", "key", "recursion"]
"""Why an entry activated."""

_DECORATOR = re.compile(r"^(@{2,3})([A-Za-z_]+)(?:[ \t]+(.*))?$")
_KNOWN = frozenset(
    {
        "activate",
        "dont_activate",
        "scan_depth",
        "additional_keys",
        "exclude_keys",
        "position",
        "depth",
    }
)
_POSITIONS: dict[str, Position] = {"before_desc": "before_char", "after_desc": "after_char"}


@frozen
class Activated:
    """An entry that entered the prompt (or was dropped for the budget).

    ``content`` is what goes into the prompt: the entry's content with its
    decorators removed. ``book`` is the index of its book in the books given.
    """

    book: int
    index: int
    entry: LoreEntry
    content: str
    position: Position
    depth: int | None
    cause: Cause
    tokens: int


@frozen
class Activation:
    """What :func:`activate` chose: ``entries`` in insertion order, ``dropped`` for the budget."""

    entries: tuple[Activated, ...]
    dropped: tuple[Activated, ...] = ()


@frozen
class Decorators:
    """The V3 decorators :func:`activate` applies, read off the top of an entry's content."""

    values: tuple[tuple[str, str], ...]
    body: str

    def get(self, name: str) -> str | None:
        """The value of decorator ``name`` ("" when it has none), or None when absent."""
        for key, value in self.values:
            if key == name:
                return value
        return None


def read_decorators(content: str) -> Decorators:
    """The recognised decorators at the top of ``content``, and the content without them.

    ``@@name value`` lines are decorators; a ``@@@name`` line right after
    one is its fallback, used when the decorator before it is not one this
    module applies. The first decorator of a name wins; unknown ones are
    ignored (and stay in the stored content, since the book is kept whole).
    """
    lines = content.split("\n")
    chosen: dict[str, str] = {}
    settled = True  # whether the last @@ decorator (or a fallback of it) was recognised
    at = 0
    while at < len(lines):
        found = _DECORATOR.match(lines[at].strip())
        if not found:
            break
        marks, name, value = found.group(1), found.group(2).lower(), found.group(3) or ""
        if marks == "@@":
            settled = name in _KNOWN
            if settled:
                chosen.setdefault(name, value.strip())
        elif not settled and name in _KNOWN:
            chosen.setdefault(name, value.strip())
            settled = True
        at += 1
    body = "\n".join(lines[at:]).strip("\n")
    return Decorators(tuple(chosen.items()), body)


def activate(
    books: Sequence[Lorebook],
    messages: Sequence[str],
    *,
    token_budget: int | None = None,
    max_recursion: int = MAX_RECURSION,
) -> Activation:
    """The entries of ``books`` that ``messages`` (oldest first) wake, within the budgets."""
    candidates = [
        (b, i, entry, read_decorators(entry.content))
        for b, book in enumerate(books)
        for i, entry in enumerate(book.entries)
        if entry.enabled
    ]
    chosen: dict[tuple[int, int], Activated] = {}

    def take(b: int, i: int, entry: LoreEntry, deco: Decorators, cause: Cause) -> None:
        position, depth = _placement(entry, deco)
        chosen[(b, i)] = Activated(
            b, i, entry, deco.body, position, depth, cause, estimate_tokens(deco.body)
        )

    for b, i, entry, deco in candidates:
        if not deco.body.strip():
            continue
        if deco.get("activate") is not None:
            take(b, i, entry, deco, "constant")
        elif deco.get("dont_activate") is not None:
            continue
        elif entry.constant:
            take(b, i, entry, deco, "constant")
        elif _matches(entry, deco, _window(books[b], entry, deco, messages)):
            take(b, i, entry, deco, "key")

    for _ in range(max(0, max_recursion)):
        # Everything activated so far is scanned, so an entry whose keys are
        # spread over two other entries' content still wakes.
        buffer = "\n".join(a.content for a in chosen.values() if not a.entry.prevent_recursion)
        if not buffer:
            break
        before = len(chosen)
        for b, i, entry, deco in candidates:
            if (b, i) in chosen or not books[b].recursive_scanning or entry.exclude_recursion:
                continue
            if deco.body.strip() and deco.get("dont_activate") is None:
                window = _window(books[b], entry, deco, messages)
                if _matches(entry, deco, f"{window}\n{buffer}"):
                    take(b, i, entry, deco, "recursion")
        if len(chosen) == before:
            break

    kept = list(chosen.values())
    dropped: list[Activated] = []
    for b, book in enumerate(books):
        if book.token_budget is not None:
            mine = [a for a in kept if a.book == b]
            for a in _over_budget(mine, book.token_budget):
                kept.remove(a)
                dropped.append(a)
    if token_budget is not None:
        for a in _over_budget(kept, token_budget):
            kept.remove(a)
            dropped.append(a)
    kept.sort(key=lambda a: (a.entry.insertion_order, a.book, a.index))
    return Activation(tuple(kept), tuple(dropped))


def key_matches(key: str, text: str, entry: LoreEntry) -> bool:
    """Whether ``key`` of ``entry`` is found in ``text`` (an invalid regex never matches)."""
    sensitive = bool(entry.case_sensitive)
    split = split_regex(key, entry.use_regex, sensitive)
    if split is not None:
        if regex_problem(*split) is not None:
            return False
        return re.search(split[0], text, split[1]) is not None
    if not key.strip():
        return False
    if entry.whole_words:
        pattern = rf"(?<!\w){re.escape(key)}(?!\w)"
        return re.search(pattern, text, 0 if sensitive else re.IGNORECASE) is not None
    return key in text if sensitive else key.casefold() in text.casefold()


def _window(book: Lorebook, entry: LoreEntry, deco: Decorators, messages: Sequence[str]) -> str:
    depth: int | None = _number(deco.get("scan_depth"))
    if depth is None:
        depth = entry.scan_depth if entry.scan_depth is not None else book.scan_depth
    if depth is None:
        return "\n".join(messages)
    return "\n".join(messages[len(messages) - depth :]) if depth > 0 else ""


def _matches(entry: LoreEntry, deco: Decorators, text: str) -> bool:
    if not any(key_matches(k, text, entry) for k in entry.keys):
        return False
    if entry.selective and entry.secondary_keys:
        hits = [key_matches(k, text, entry) for k in entry.secondary_keys]
        passed = {
            "and_any": any(hits),
            "and_all": all(hits),
            "not_any": not any(hits),
            "not_all": not all(hits),
        }[entry.logic]
        if not passed:
            return False
    additional = _values(deco.get("additional_keys"))
    if additional and not any(key_matches(k, text, entry) for k in additional):
        return False
    return not any(key_matches(k, text, entry) for k in _values(deco.get("exclude_keys")))


def _placement(entry: LoreEntry, deco: Decorators) -> tuple[Position, int | None]:
    position = _POSITIONS.get(deco.get("position") or "")
    if position is not None:
        return position, None
    depth = _number(deco.get("depth"))
    if depth is not None:
        return "at_depth", depth
    return entry.position, entry.depth


def _over_budget(entries: list[Activated], budget: int) -> list[Activated]:
    """The entries to drop so the rest fit ``budget``: the lowest ranked first."""
    total = sum(a.tokens for a in entries)
    causes = {"recursion": 0, "key": 1, "constant": 2}
    ranked = sorted(
        entries,
        key=lambda a: (
            a.entry.priority if a.entry.priority is not None else a.entry.insertion_order,
            causes[a.cause],
            -a.book,
            -a.index,
        ),
    )
    drop: list[Activated] = []
    for a in ranked:
        if total <= budget:
            break
        drop.append(a)
        total -= a.tokens
    return drop


def _number(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value.strip())
    except ValueError:
        return None


def _values(value: str | None) -> tuple[str, ...]:
    if not value:
        return ()
    return tuple(v.strip() for v in value.split(",") if v.strip())
