"""A lorebook written in the other format: SillyTavern world info ⇄ V3 ``lorebook_v3``.

A book goes out in its own format untouched (:func:`lorebook_json`). When
it must go out in the other one — a world-info book embedded in a card, a
card's book saved as world info — every field is mapped to its namesake,
SillyTavern's settings that V3 has no field for go under the entry's
``extensions`` (where SillyTavern itself puts them in a card), and the
whole original rides along — a world-info entry under the V3 entry's
``extensions["troupe/world_info"]``, a V3 entry (and the V3 book's own
settings) under ``"troupe/lorebook_v3"`` in the world-info file, where
SillyTavern keeps keys it does not know — so converting back gives the
very same book.
"""

from __future__ import annotations

import copy

from ._formats import Json, JsonObject, object_of
from ._lore import Lorebook, LoreEntry

WORLD_INFO_KEY = "troupe/world_info"
"""Under a V3 book's or entry's ``extensions``: the world-info original it was converted from."""

LOREBOOK_V3_KEY = "troupe/lorebook_v3"
"""In a world-info file or entry: the V3 original (book settings, entry) it was converted from."""

_LOGIC_NUMBER = {"and_any": 0, "not_all": 1, "not_any": 2, "and_all": 3}
_POSITION_NUMBER = {
    "before_char": 0,
    "after_char": 1,
    "an_top": 2,
    "an_bottom": 3,
    "at_depth": 4,
    "examples_top": 5,
    "examples_bottom": 6,
    "outlet": 7,
}


def lorebook_v3_json(book: Lorebook) -> JsonObject:
    """The book as a V3 lorebook file (``{"spec": "lorebook_v3", "data": {...}}``)."""
    doc = book.original()
    if book.format == "lorebook_v3":
        return doc
    if book.format == "character_book":
        return {"spec": "lorebook_v3", "data": doc}
    raw = doc.get("entries")
    items = list(raw.values()) if isinstance(raw, dict) else raw if isinstance(raw, list) else []
    entries: list[Json] = []
    for item, model in zip(items, book.entries, strict=False):
        if isinstance(item, dict):
            came_from = object_of(item, LOREBOOK_V3_KEY)
            entries.append(copy.deepcopy(came_from) if came_from else _v3_entry(item, model))
    rest = {k: v for k, v in doc.items() if k not in ("entries", LOREBOOK_V3_KEY)}
    came_from_book = object_of(doc, LOREBOOK_V3_KEY)
    if came_from_book:
        data: JsonObject = copy.deepcopy(came_from_book)
    else:
        data = {
            "name": book.name,
            "recursive_scanning": book.recursive_scanning,
            "extensions": {WORLD_INFO_KEY: rest},
        }
    data["entries"] = entries
    return {"spec": "lorebook_v3", "data": data}


def world_info_json(book: Lorebook) -> JsonObject:
    """The book as a SillyTavern world-info file (``{"entries": {"0": {...}}}``)."""
    doc = book.original()
    if book.format == "world_info":
        return doc
    data = object_of(doc, "data") if book.format == "lorebook_v3" else doc
    came_from = object_of(object_of(data, "extensions"), WORLD_INFO_KEY)
    out: JsonObject = copy.deepcopy(came_from) if came_from else {"name": book.name}
    if not came_from:
        # World info has no place for the book's own settings: keep them aside.
        out[LOREBOOK_V3_KEY] = {k: v for k, v in data.items() if k != "entries"}
    raw = data.get("entries")
    items = raw if isinstance(raw, list) else []
    entries: JsonObject = {}
    for n, (item, model) in enumerate(zip(items, book.entries, strict=False)):
        if not isinstance(item, dict):
            continue
        original = object_of(object_of(item, "extensions"), WORLD_INFO_KEY)
        entry = copy.deepcopy(original) if original else _world_info_entry(n, item, model)
        entries[str(entry.get("uid", n))] = entry
    out["entries"] = entries
    return out


def _world_info_entry(n: int, item: JsonObject, model: LoreEntry) -> JsonObject:
    return {
        "uid": n,
        "key": list(model.keys),
        "keysecondary": list(model.secondary_keys),
        "comment": item.get("comment") or item.get("name") or "",
        "content": model.content,
        "constant": model.constant,
        "selective": model.selective,
        "selectiveLogic": _LOGIC_NUMBER[model.logic],
        "order": _number(model.insertion_order),
        "position": _POSITION_NUMBER[model.position],
        "disable": not model.enabled,
        "caseSensitive": model.case_sensitive,
        "matchWholeWords": model.whole_words,
        "scanDepth": model.scan_depth,
        "depth": model.depth,
        "excludeRecursion": model.exclude_recursion,
        "preventRecursion": model.prevent_recursion,
        LOREBOOK_V3_KEY: copy.deepcopy(item),
    }


def _v3_entry(item: JsonObject, model: LoreEntry) -> Json:
    ext: JsonObject = {
        "position": _POSITION_NUMBER[model.position],
        "depth": model.depth,
        "selectiveLogic": _LOGIC_NUMBER[model.logic],
        "scan_depth": model.scan_depth,
        "match_whole_words": model.whole_words,
        "case_sensitive": model.case_sensitive,
        "exclude_recursion": model.exclude_recursion,
        "prevent_recursion": model.prevent_recursion,
        "probability": item.get("probability"),
        "useProbability": item.get("useProbability"),
        WORLD_INFO_KEY: copy.deepcopy(item),
    }
    entry: JsonObject = {
        "keys": list(model.keys),
        "secondary_keys": list(model.secondary_keys),
        "content": model.content,
        "extensions": ext,
        "enabled": model.enabled,
        "insertion_order": _number(model.insertion_order),
        "case_sensitive": model.case_sensitive,
        "use_regex": False,
        "constant": model.constant,
        "selective": model.selective,
        "position": "after_char" if model.position == "after_char" else "before_char",
        "comment": item.get("comment"),
        "id": item.get("uid"),
    }
    # V3 fields are absent rather than null when there is nothing to say.
    entry["extensions"] = {k: v for k, v in ext.items() if v is not None}
    return {k: v for k, v in entry.items() if v is not None}


def _number(value: float) -> int | float:
    return int(value) if value.is_integer() else value
