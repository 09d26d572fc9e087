"""Which format a file is, and reading any of them: the one door for imported bytes.

:func:`detect` tells the formats apart by their bytes alone (never by a
file name): a PNG or APNG card, a CHARX zip, a JSON card (V1, V2 or V3),
a SillyTavern world-info file, a V3 ``lorebook_v3`` file, a SillyTavern
chat in JSON Lines. :func:`read_import` then reads the file whole or
raises :class:`CardError`; nothing is half-read.
"""

from __future__ import annotations

from typing import Literal

from attrs import frozen

from ._cards import V1_FIELDS, Card, card_json_bytes, card_v2_json, card_v3_json, read_card_json
from ._charx import read_charx
from ._formats import CardError, Json, check_size, decode_text, parse_json
from ._lore import Lorebook, LoreProblem, read_lorebook_v3, read_world_info
from ._png import SIGNATURE, card_text, embed_texts, placeholder_png, read_chunks, strip_card
from ._st_chat import StChat, read_st_chat

ImportKind = Literal["png_card", "json_card", "charx", "world_info", "lorebook_v3", "st_chat"]
"""The formats troupe imports."""

_ZIP = (b"PK\x03\x04", b"PK\x05\x06")
_CHAT_KEYS = ("user_name", "character_name", "chat_metadata", "mes")


@frozen
class ImportedCard:
    """A card read from a file, with its avatar (the bare image) and CHARX files."""

    card: Card
    avatar: bytes | None = None
    files: tuple[tuple[str, bytes], ...] = ()

    @property
    def problems(self) -> tuple[LoreProblem, ...]:
        """What in the card's book can never work."""
        return self.card.problems


@frozen
class ImportedLorebook:
    """A lorebook read from a file."""

    book: Lorebook

    @property
    def problems(self) -> tuple[LoreProblem, ...]:
        """What in the book can never work."""
        return self.book.problems


@frozen
class ImportedChat:
    """A SillyTavern chat read from a file."""

    chat: StChat


Imported = ImportedCard | ImportedLorebook | ImportedChat
"""What :func:`read_import` gives."""


def detect(data: bytes) -> ImportKind:
    """The format of ``data``.

    Raises ``too_large`` past the import limit, ``bad_json`` for text that
    starts like JSON but is not, and ``not_a_card`` for anything else.
    """
    check_size(data)
    if data.startswith(SIGNATURE):
        return "png_card"
    if data.startswith(_ZIP):
        return "charx"
    try:
        text = decode_text(data, "the file").strip()
    except CardError:
        raise _unknown() from None
    if not text.startswith("{"):
        raise _unknown()
    try:
        value = parse_json(text, "the file")
    except CardError as whole:
        first = text.split("\n", 1)[0]
        try:
            head = parse_json(first, "the first line")
        except CardError:
            raise whole from None
        if isinstance(head, dict) and any(k in head for k in _CHAT_KEYS):
            return "st_chat"
        raise whole from None
    return _kind_of_json(value)


def read_import(data: bytes) -> Imported:
    """Read ``data`` in whichever format :func:`detect` finds."""
    kind = detect(data)
    if kind == "png_card":
        return read_card_png(data)
    if kind == "charx":
        charx = read_charx(data)
        return ImportedCard(charx.card, charx.icon(), charx.files)
    if kind == "st_chat":
        return ImportedChat(read_st_chat(data))
    text = decode_text(data, "the file")
    if kind == "world_info":
        return ImportedLorebook(read_world_info(text))
    if kind == "lorebook_v3":
        return ImportedLorebook(read_lorebook_v3(text))
    return ImportedCard(read_card_json(text))


def read_card_png(data: bytes) -> ImportedCard:
    """A card from a PNG or APNG: its ``ccv3`` chunk if there is one, else ``chara``.

    The avatar kept is the image without its card chunks.
    """
    check_size(data)
    keyword, text = card_text(data)
    card = read_card_json(text, f"the PNG's '{keyword}' card")
    return ImportedCard(card, strip_card(data))


def write_card_png(card: Card, avatar: bytes | None = None) -> bytes:
    """``avatar`` (a grey pixel if None) carrying the card as ``chara`` (V2) and ``ccv3`` (V3).

    Readers of V2 find the ``chara`` chunk; readers of V3 prefer ``ccv3``.
    """
    image = avatar if avatar is not None else placeholder_png()
    read_chunks(image)  # the avatar must itself be a sound PNG
    return embed_texts(
        image,
        {
            "chara": card_json_bytes(card_v2_json(card)).decode("utf-8"),
            "ccv3": card_json_bytes(card_v3_json(card)).decode("utf-8"),
        },
    )


def _kind_of_json(value: Json) -> ImportKind:
    if not isinstance(value, dict):
        raise _unknown()
    spec = value.get("spec")
    if spec == "lorebook_v3":
        return "lorebook_v3"
    if spec in ("chara_card_v2", "chara_card_v3"):
        return "json_card"
    if any(k in value for k in _CHAT_KEYS):
        return "st_chat"
    if isinstance(value.get("entries"), dict | list) and "first_mes" not in value:
        return "world_info"
    if any(k in value for k in V1_FIELDS):
        return "json_card"
    raise _unknown()


def _unknown() -> CardError:
    return CardError(
        "not_a_card",
        "the file is not a format troupe imports: a PNG or APNG card, a JSON card (V1, V2, V3), "
        "a CHARX, a SillyTavern world-info file, a lorebook_v3 file or a SillyTavern chat "
        "(.jsonl)",
    )
