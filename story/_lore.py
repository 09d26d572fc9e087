"""Lorebooks: one model for SillyTavern world info, V3 ``lorebook_v3`` and a card's book.

The three formats say the same things under different names (``key`` or
``keys``, ``order`` or ``insertion_order``, ``disable`` or ``enabled``...);
:class:`Lorebook` holds what activation needs under one set of names, and
the whole original document as text, so writing a book back gives every
field, every unknown key, every ``extensions`` value and every V3
decorator exactly as they came. Activation lives in ``_lore_scan``.
"""

from __future__ import annotations

import re
from typing import Literal

from attrs import frozen

from ._formats import (
    CardError,
    Json,
    JsonObject,
    dump_json,
    flag_of,
    kind_of,
    load_copy,
    number_of,
    object_of,
    parse_object,
    text_of,
    texts_of,
)

BookFormat = Literal["world_info", "lorebook_v3", "character_book"]
"""Where a book came from: a SillyTavern world-info file, a V3 lorebook file, a card."""

Logic = Literal["and_any", "not_all", "not_any", "and_all"]
"""How secondary keys combine with the primary ones (SillyTavern's ``selectiveLogic``)."""

Position = Literal[
    "before_char",
    "after_char",
    "an_top",
    "an_bottom",
    "at_depth",
    "examples_top",
    "examples_bottom",
    "outlet",
]
"""Where an entry's content goes in the prompt."""

# SillyTavern numbers both enums; the card formats write the position as a word.
_LOGIC: dict[int, Logic] = {0: "and_any", 1: "not_all", 2: "not_any", 3: "and_all"}
_POSITION: dict[int, Position] = {
    0: "before_char",
    1: "after_char",
    2: "an_top",
    3: "an_bottom",
    4: "at_depth",
    5: "examples_top",
    6: "examples_bottom",
    7: "outlet",
}
_SLASHED = re.compile(r"^/(.+)/([a-z]*)$", re.DOTALL)
MAX_REGEX = 1000
"""The longest regular expression a lorebook key may be."""

# A group with a quantifier inside, itself quantified: (x+)+, (x*)*, (x{2,})+...
_NESTED_REPEAT = re.compile(
    r"\((?:[^()\\]|\\.)*(?:[+*]|\{\d*,\d*\})(?:[^()\\]|\\.)*\)(?:[+*]|\{\d*,)"
)


@frozen
class LoreProblem:
    """Something in a book that can never work, reported on import (the book still loads)."""

    entry: str
    key: str
    message: str


@frozen
class LoreEntry:
    """One entry of a lorebook, as activation reads it.

    ``content`` is as written, V3 decorators (``@@name value`` lines at its
    top) included. ``priority`` is None when the file gives none; the token
    budget then falls back on ``insertion_order``. ``case_sensitive``,
    ``scan_depth`` and ``whole_words`` None mean "the book's default".
    """

    label: str
    keys: tuple[str, ...]
    secondary_keys: tuple[str, ...] = ()
    content: str = ""
    enabled: bool = True
    constant: bool = False
    selective: bool = False
    logic: Logic = "and_any"
    case_sensitive: bool | None = None
    use_regex: bool = False
    whole_words: bool | None = None
    insertion_order: float = 100.0
    priority: float | None = None
    position: Position = "before_char"
    depth: int | None = None
    scan_depth: int | None = None
    exclude_recursion: bool = False
    prevent_recursion: bool = False


@frozen
class Lorebook:
    """A lorebook: its settings, its entries, and the original document to write it back.

    ``scan_depth`` None scans every message given; ``token_budget`` None
    means no budget of its own. ``problems`` lists keys that can never match
    (an invalid regular expression).
    """

    format: BookFormat
    name: str
    entries: tuple[LoreEntry, ...]
    scan_depth: int | None = None
    token_budget: int | None = None
    recursive_scanning: bool = False
    problems: tuple[LoreProblem, ...] = ()
    source: str = "{}"

    def original(self) -> JsonObject:
        """The book's document exactly as it was read (a fresh copy)."""
        return load_copy(self.source)


def read_world_info(text: str) -> Lorebook:
    """A SillyTavern world-info file (``{"entries": {"0": {...}}}``) as a :class:`Lorebook`."""
    doc = parse_object(text, "the world-info file")
    raw = doc.get("entries")
    if isinstance(raw, dict):
        items = list(raw.items())
    elif isinstance(raw, list):
        items = [(str(i), e) for i, e in enumerate(raw)]
    else:
        raise CardError(
            "bad_lorebook", f"the world-info file's entries must be an object, not {kind_of(raw)}"
        )
    entries = tuple(_st_entry(uid, _entry_object(e, uid)) for uid, e in items)
    # World-info files carry no book settings: SillyTavern keeps them globally
    # and scans recursively by default.
    return _book("world_info", text_of(doc, "name", ""), entries, None, None, True, doc)


def read_lorebook_v3(text: str) -> Lorebook:
    """A V3 lorebook file (``{"spec": "lorebook_v3", "data": {...}}``) as a :class:`Lorebook`."""
    doc = parse_object(text, "the lorebook file")
    data = doc.get("data")
    if not isinstance(data, dict):
        raise CardError(
            "bad_lorebook", f"the lorebook's data must be an object, not {kind_of(data)}"
        )
    return book_from_card_book(data, "lorebook_v3", doc)


def book_from_card_book(data: JsonObject, fmt: BookFormat, doc: JsonObject) -> Lorebook:
    """A V2/V3 ``Lorebook`` object (a card's ``character_book`` or a file's ``data``).

    ``doc`` is the document to keep for writing back (the object itself for a card's book).
    """
    raw = data.get("entries", [])
    if not isinstance(raw, list):
        raise CardError(
            "bad_lorebook", f"the lorebook's entries must be a list, not {kind_of(raw)}"
        )
    entries = tuple(_card_entry(str(i), _entry_object(e, str(i))) for i, e in enumerate(raw))
    scan = number_of(data, "scan_depth")
    budget = number_of(data, "token_budget")
    return _book(
        fmt,
        text_of(data, "name", "the lorebook's ", "bad_lorebook"),
        entries,
        None if scan is None else max(0, int(scan)),
        None if budget is None else max(0, int(budget)),
        flag_of(data, "recursive_scanning", False),
        doc,
    )


def lorebook_json(book: Lorebook) -> JsonObject:
    """The book written back in its own format: the document it was read from, field for field."""
    return book.original()


def split_regex(key: str, use_regex: bool, case_sensitive: bool) -> tuple[str, int] | None:
    """``key`` as a (pattern, flags) pair if it is a regular expression, else None.

    A key written ``/pattern/flags`` (SillyTavern's form) is one, with its
    own flags (``i``, ``s``, ``m``; the others change nothing here); with
    ``use_regex`` (V3) every key is one, case-insensitive unless the entry
    is case-sensitive.
    """
    slashed = _SLASHED.match(key)
    if slashed:
        flags = 0
        for letter, flag in (("i", re.IGNORECASE), ("s", re.DOTALL), ("m", re.MULTILINE)):
            if letter in slashed.group(2):
                flags |= flag
        return slashed.group(1), flags
    if use_regex:
        return key, 0 if case_sensitive else re.IGNORECASE
    return None


def _book(
    fmt: BookFormat,
    name: str,
    entries: tuple[LoreEntry, ...],
    scan: int | None,
    budget: int | None,
    recursive: bool,
    doc: JsonObject,
) -> Lorebook:
    return Lorebook(
        format=fmt,
        name=name,
        entries=entries,
        scan_depth=scan,
        token_budget=budget,
        recursive_scanning=recursive,
        problems=tuple(p for e in entries for p in _problems(e)),
        source=dump_json(doc),
    )


def regex_problem(pattern: str, flags: int) -> str | None:
    """Why ``pattern`` can never be used as a key, or None if it can.

    Besides an invalid pattern, a repetition of a group that itself repeats
    (``(a+)+``, ``(\\w+\\s?)*``) is refused: Python's engine can take
    exponential time on it, and lore is scanned on the story's own thread.
    """
    if len(pattern) > MAX_REGEX:
        return f"regular expression longer than {MAX_REGEX} characters; it never matches"
    try:
        re.compile(pattern, flags)
    except re.error as exc:
        return f"invalid regular expression ({exc}); it never matches"
    except (OverflowError, RecursionError):
        return "regular expression too large; it never matches"
    if _NESTED_REPEAT.search(pattern):
        return "a repeated group that itself repeats can take exponential time; it never matches"
    return None


def _problems(entry: LoreEntry) -> list[LoreProblem]:
    found: list[LoreProblem] = []
    for key in (*entry.keys, *entry.secondary_keys):
        split = split_regex(key, entry.use_regex, bool(entry.case_sensitive))
        problem = None if split is None else regex_problem(*split)
        if problem is not None:
            found.append(LoreProblem(entry.label, key, problem))
    return found


def _entry_object(value: Json, uid: str) -> JsonObject:
    if not isinstance(value, dict):
        raise CardError(
            "bad_lorebook", f"lorebook entry {uid} must be an object, not {kind_of(value)}"
        )
    return value


def _label(entry: JsonObject, uid: str) -> str:
    for key in ("comment", "name"):
        value = entry.get(key)
        if isinstance(value, str) and value.strip():
            return f"{uid} ({value.strip()[:60]})"
    return uid


def _or(value: float | None, default: float) -> float:
    return default if value is None else value


def _int(value: float | None) -> int | None:
    return None if value is None else int(value)


def _logic(value: Json) -> Logic:
    if isinstance(value, int) and not isinstance(value, bool):
        return _LOGIC.get(value, "and_any")
    return "and_any"


def _position(number: Json, word: Json) -> Position:
    if isinstance(number, int) and not isinstance(number, bool) and number in _POSITION:
        return _POSITION[number]
    return "after_char" if word == "after_char" else "before_char"


def _optional_flag(value: Json) -> bool | None:
    return value if isinstance(value, bool) else None


def _never(entry: JsonObject) -> bool:
    # A trigger chance of 0 % never fires; other chances are not rolled, since
    # the story layer is deterministic: the entry simply activates.
    chance = number_of(entry, "probability")
    return flag_of(entry, "useProbability", False) and chance is not None and chance <= 0


def _st_entry(uid: str, e: JsonObject) -> LoreEntry:
    where = f"lorebook entry {uid}: "
    return LoreEntry(
        label=_label(e, uid),
        keys=texts_of(e, "key", where, "bad_lorebook", commas=True),
        secondary_keys=texts_of(e, "keysecondary", where, "bad_lorebook", commas=True),
        content=text_of(e, "content", where, "bad_lorebook"),
        enabled=not flag_of(e, "disable", False) and not _never(e),
        constant=flag_of(e, "constant", False),
        selective=flag_of(e, "selective", True),
        logic=_logic(e.get("selectiveLogic")),
        case_sensitive=_optional_flag(e.get("caseSensitive")),
        whole_words=_optional_flag(e.get("matchWholeWords")),
        insertion_order=_or(number_of(e, "order"), 100.0),
        position=_position(e.get("position"), None),
        depth=_int(number_of(e, "depth")),
        scan_depth=_int(number_of(e, "scanDepth")),
        exclude_recursion=flag_of(e, "excludeRecursion", False),
        prevent_recursion=flag_of(e, "preventRecursion", False),
    )


def _card_entry(uid: str, e: JsonObject) -> LoreEntry:
    where = f"lorebook entry {uid}: "
    # SillyTavern writes its own settings of a card's entries under extensions.
    ext = object_of(e, "extensions")
    case = _optional_flag(e.get("case_sensitive"))
    return LoreEntry(
        label=_label(e, uid),
        keys=texts_of(e, "keys", where, "bad_lorebook", commas=True),
        secondary_keys=texts_of(e, "secondary_keys", where, "bad_lorebook", commas=True),
        content=text_of(e, "content", where, "bad_lorebook"),
        enabled=flag_of(e, "enabled", True) and not _never(ext),
        constant=flag_of(e, "constant", False),
        selective=flag_of(e, "selective", False),
        logic=_logic(e.get("selectiveLogic", ext.get("selectiveLogic"))),
        case_sensitive=case if case is not None else _optional_flag(ext.get("case_sensitive")),
        use_regex=flag_of(e, "use_regex", False),
        whole_words=_optional_flag(ext.get("match_whole_words")),
        insertion_order=_or(number_of(e, "insertion_order"), 0.0),
        priority=number_of(e, "priority"),
        position=_position(ext.get("position"), e.get("position")),
        depth=_int(number_of(ext, "depth")),
        scan_depth=_int(number_of(ext, "scan_depth")),
        exclude_recursion=flag_of(ext, "exclude_recursion", False),
        prevent_recursion=flag_of(ext, "prevent_recursion", False),
    )
