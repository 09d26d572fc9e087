"""Character cards V1, V2 and V3: read their JSON, write it back with nothing lost.

A :class:`Card` holds the fields troupe uses, under the V2/V3 names, and
the whole original document as text. Writing a card in the version it
came in gives that document back, every field and every unknown key
included; writing it in a newer version moves the fields into ``data``,
adds the fields the newer version requires with their defaults, and keeps
every original key where it was. V3 is preferred on export.

The specs: Character Card V2 (``malfoyslastname/character-card-spec-v2``)
and V3 (``kwaroran/character-card-spec-v3``).
"""

from __future__ import annotations

import copy
from typing import Literal

from attrs import frozen

from ._formats import (
    CardError,
    JsonObject,
    dump_json,
    kind_of,
    load_copy,
    object_of,
    parse_object,
    text_of,
    texts_of,
)
from ._lore import Lorebook, LoreProblem, book_from_card_book

CardSpec = Literal["v1", "v2", "v3"]
"""The version a card was written in."""

V1_FIELDS = ("name", "description", "personality", "scenario", "first_mes", "mes_example")
"""The six fields of a V1 card, which V2 and V3 keep inside ``data``."""

V2_DEFAULTS: JsonObject = {
    "creator_notes": "",
    "system_prompt": "",
    "post_history_instructions": "",
    "alternate_greetings": [],
    "tags": [],
    "creator": "",
    "character_version": "",
    "extensions": {},
}
"""The fields V2 adds, with the values a V1 card is given on the way up."""

NEVER_IN_PROMPTS = ("creator_notes", "tags", "creator", "character_version")
"""Fields for the people browsing cards, which the specs keep out of every prompt."""

BACKFILL_NOTE = (
    "This character card is Character Card V3, but it is loaded as a Character Card V2. "
    "Please use a Character Card V3 compatible application to use this character card properly."
)
"""What the V2 copy of a V3 card says in ``creator_notes``, as the V3 spec asks."""


@frozen
class CardAsset:
    """An asset a V3 card names: an icon, a background, an emotion..."""

    type: str
    uri: str
    name: str
    ext: str


@frozen
class Card:
    """A character card: the fields troupe reads, and the document it came from.

    ``book`` is the card's own lorebook (``character_book``), if any.
    ``character_version`` is given as text even where a card wrote a number.
    """

    spec: CardSpec
    name: str
    description: str = ""
    personality: str = ""
    scenario: str = ""
    first_mes: str = ""
    mes_example: str = ""
    system_prompt: str = ""
    post_history_instructions: str = ""
    alternate_greetings: tuple[str, ...] = ()
    group_only_greetings: tuple[str, ...] = ()
    nickname: str = ""
    creator_notes: str = ""
    tags: tuple[str, ...] = ()
    creator: str = ""
    character_version: str = ""
    book: Lorebook | None = None
    assets: tuple[CardAsset, ...] = ()
    source: str = "{}"

    def original(self) -> JsonObject:
        """The card's document exactly as it was read (a fresh copy)."""
        return load_copy(self.source)

    @property
    def problems(self) -> tuple[LoreProblem, ...]:
        """What in the card's book can never work (reported on import)."""
        return self.book.problems if self.book is not None else ()


def read_card_json(text: str, what: str = "the card") -> Card:
    """A card from its JSON text, V1, V2 or V3.

    Raises ``bad_json`` for text that is not a JSON object, ``no_name``
    for a card without a name, ``bad_card`` for a field of the wrong type,
    ``bad_lorebook`` for a broken ``character_book``.
    """
    doc = parse_object(text, what)
    spec = doc.get("spec")
    if spec in ("chara_card_v2", "chara_card_v3"):
        data = doc.get("data")
        if not isinstance(data, dict):
            raise CardError("bad_card", f"{what}'s data must be an object, not {kind_of(data)}")
        return _card("v3" if spec == "chara_card_v3" else "v2", data, doc, "data.")
    if spec is not None and isinstance(doc.get("data"), dict):
        raise CardError(
            "bad_card",
            f"{what} says it is {spec!r}; known are chara_card_v2 and chara_card_v3 (or V1)",
        )
    return _card("v1", doc, doc, "")


def card_v2_json(card: Card) -> JsonObject:
    """The card as Character Card V2 JSON (for a PNG's ``chara`` chunk).

    A V2 card gives back its document; a V1 card moves up, its original
    keys kept at the top level; a V3 card keeps every field, with the V3
    backfill note ahead of its creator notes.
    """
    doc = card.original()
    if card.spec == "v2":
        return doc
    if card.spec == "v1":
        return _from_v1(doc, "chara_card_v2", "2.0")
    out = copy.deepcopy(doc)
    data = object_of(out, "data")
    notes = data.get("creator_notes")
    data["creator_notes"] = BACKFILL_NOTE + (
        f"\n\n{notes}" if isinstance(notes, str) and notes else ""
    )
    out["spec"] = "chara_card_v2"
    out["spec_version"] = "2.0"
    return out


def card_v3_json(card: Card) -> JsonObject:
    """The card as Character Card V3 JSON (``ccv3`` chunk, ``card.json``).

    A V3 card gives back its document; older ones move up, keeping every
    field and key, with ``group_only_greetings`` added (empty) and each
    book entry given ``use_regex: false`` where it has no such field.
    """
    doc = card.original()
    if card.spec == "v3":
        return doc
    if card.spec == "v1":
        return _from_v1(doc, "chara_card_v3", "3.0")
    out = copy.deepcopy(doc)
    out["spec"] = "chara_card_v3"
    out["spec_version"] = "3.0"
    _add_v3_fields(object_of(out, "data"))
    return out


def card_json_bytes(doc: JsonObject) -> bytes:
    """``doc`` as UTF-8 JSON bytes, for a file or a PNG chunk."""
    return dump_json(doc).encode("utf-8")


def _from_v1(doc: JsonObject, spec: str, version: str) -> JsonObject:
    data: JsonObject = {k: doc.get(k) or "" for k in V1_FIELDS}
    data.update(copy.deepcopy(V2_DEFAULTS))
    if spec == "chara_card_v3":
        _add_v3_fields(data)
    # Every original key stays at the top level, as front ends that write V1
    # mirrors there do, so nothing of the V1 file is lost.
    out = copy.deepcopy(doc)
    out["spec"] = spec
    out["spec_version"] = version
    out["data"] = data
    return out


def _add_v3_fields(data: JsonObject) -> None:
    data.setdefault("group_only_greetings", [])
    entries = object_of(data, "character_book").get("entries")
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, dict):
            entry.setdefault("use_regex", False)


def _card(spec: CardSpec, data: JsonObject, doc: JsonObject, where: str) -> Card:
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        raise CardError("no_name", f"the card has no name: {where}name must be non-empty text")
    raw_book = data.get("character_book")
    book: Lorebook | None = None
    if isinstance(raw_book, dict):
        book = book_from_card_book(raw_book, "character_book", raw_book)
    elif raw_book is not None:
        raise CardError(
            "bad_card", f"{where}character_book must be an object, not {kind_of(raw_book)}"
        )
    version = data.get("character_version")
    return Card(
        spec=spec,
        name=name.strip(),
        description=text_of(data, "description", where),
        personality=text_of(data, "personality", where),
        scenario=text_of(data, "scenario", where),
        first_mes=text_of(data, "first_mes", where),
        mes_example=text_of(data, "mes_example", where),
        system_prompt=text_of(data, "system_prompt", where),
        post_history_instructions=text_of(data, "post_history_instructions", where),
        alternate_greetings=texts_of(data, "alternate_greetings", where),
        group_only_greetings=texts_of(data, "group_only_greetings", where),
        nickname=text_of(data, "nickname", where).strip() if spec == "v3" else "",
        creator_notes=text_of(data, "creator_notes", where),
        tags=texts_of(data, "tags", where),
        creator=text_of(data, "creator", where),
        character_version=(
            str(version)
            if isinstance(version, int | float) and not isinstance(version, bool)
            else text_of(data, "character_version", where)
        ),
        book=book,
        assets=_assets(data, where) if spec == "v3" else (),
        source=dump_json(doc),
    )


def _assets(data: JsonObject, where: str) -> tuple[CardAsset, ...]:
    raw = data.get("assets")
    if raw is None:
        # The V3 spec: no assets means the card's own image is its main icon.
        return (CardAsset("icon", "ccdefault:", "main", "png"),)
    if not isinstance(raw, list):
        raise CardError("bad_card", f"{where}assets must be a list, not {kind_of(raw)}")
    assets: list[CardAsset] = []
    for n, item in enumerate(raw):
        if not isinstance(item, dict):
            raise CardError("bad_card", f"{where}assets[{n}] must be an object")
        at = f"{where}assets[{n}]."
        assets.append(
            CardAsset(
                text_of(item, "type", at),
                text_of(item, "uri", at),
                text_of(item, "name", at),
                text_of(item, "ext", at),
            )
        )
    return tuple(assets)
