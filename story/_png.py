"""PNG and APNG chunks: read them with their CRCs checked, write them back with new CRCs.

A character card travels inside its avatar: a ``tEXt`` chunk whose keyword
is ``chara`` (Character Card V1/V2) or ``ccv3`` (V3) holds the card's JSON,
UTF-8 then base64. An APNG is a PNG with animation chunks (``acTL``,
``fcTL``, ``fdAT``) beside the usual ones, so the same reading serves both.
Writing a card replaces only those two chunks, just before ``IEND``: every
other chunk — the image, its animation, its colour profile, other text —
stays as it was, in its order.
"""

from __future__ import annotations

import base64
import binascii
import struct
import zlib

from attrs import frozen

from ._formats import CardError

SIGNATURE = b"\x89PNG\r\n\x1a\n"
"""The eight bytes every PNG (and APNG) starts with."""

CARD_KEYWORDS = ("chara", "ccv3")
"""The ``tEXt`` keywords that hold a card, V2 then V3."""


@frozen
class Chunk:
    """One PNG chunk: its four-letter type and its data (the length and CRC are derived)."""

    type: bytes
    data: bytes


def read_chunks(png: bytes) -> tuple[Chunk, ...]:
    """The chunks of ``png`` in order, up to and including ``IEND``.

    Raises ``bad_png`` for a missing signature, a chunk cut short, a CRC
    that does not match, or no ``IEND``; bytes after ``IEND`` are ignored,
    as decoders do.
    """
    if not png.startswith(SIGNATURE):
        raise CardError("bad_png", "the file does not start with the PNG signature")
    chunks: list[Chunk] = []
    at = len(SIGNATURE)
    while True:
        if at + 8 > len(png):
            raise CardError("bad_png", "the PNG ends before its IEND chunk")
        length, kind = struct.unpack(">I4s", png[at : at + 8])
        end = at + 8 + length
        if end + 4 > len(png):
            raise CardError("bad_png", f"the PNG's {_name(kind)} chunk is cut short")
        data = png[at + 8 : end]
        (crc,) = struct.unpack(">I", png[end : end + 4])
        if zlib.crc32(kind + data) != crc:
            raise CardError("bad_png", f"the PNG's {_name(kind)} chunk fails its CRC check")
        chunks.append(Chunk(kind, data))
        at = end + 4
        if kind == b"IEND":
            return tuple(chunks)


def write_chunks(chunks: tuple[Chunk, ...] | list[Chunk]) -> bytes:
    """A PNG made of ``chunks``, in order, each with its length and CRC."""
    out = [SIGNATURE]
    for chunk in chunks:
        out.append(struct.pack(">I", len(chunk.data)))
        out.append(chunk.type + chunk.data)
        out.append(struct.pack(">I", zlib.crc32(chunk.type + chunk.data)))
    return b"".join(out)


def text_chunks(chunks: tuple[Chunk, ...]) -> dict[str, bytes]:
    """The ``tEXt`` chunks as keyword → text bytes (the first of a repeated keyword wins).

    Keywords are given in lower case: V1 cards were written as ``Chara`` too.
    """
    texts: dict[str, bytes] = {}
    for chunk in chunks:
        if chunk.type != b"tEXt" or b"\x00" not in chunk.data:
            continue
        keyword, _, text = chunk.data.partition(b"\x00")
        texts.setdefault(keyword.decode("latin-1").lower(), text)
    return texts


def card_texts(png: bytes) -> dict[str, str]:
    """Every card chunk of ``png`` (``chara`` and/or ``ccv3``), base64 decoded to JSON text.

    Raises ``bad_png`` for a broken PNG, ``no_card_chunk`` when neither
    chunk is there, ``bad_base64`` when one is not base64 of UTF-8 text.
    """
    found = _card_chunks(png)
    return {keyword: _decode(keyword, raw) for keyword, raw in found.items()}


def card_text(png: bytes) -> tuple[str, str]:
    """The card chunk to read, as (keyword, JSON text): ``ccv3`` if present, else ``chara``.

    Only that chunk is decoded, so a broken V2 copy beside a sound V3 card
    does not stop the import. Raises as :func:`card_texts` does.
    """
    found = _card_chunks(png)
    keyword = "ccv3" if "ccv3" in found else "chara"
    return keyword, _decode(keyword, found[keyword])


def embed_texts(png: bytes, texts: dict[str, str]) -> bytes:
    """``png`` with a ``tEXt`` chunk per ``texts`` item (value base64 of UTF-8) before ``IEND``.

    Any existing ``tEXt`` chunk with one of those keywords, and any card
    chunk, is dropped first, so the result carries exactly the new card;
    every other chunk is kept in its order.
    """
    replaced = {k.lower() for k in texts} | set(CARD_KEYWORDS)
    kept = [
        c
        for c in read_chunks(png)
        if c.type != b"IEND" and not (c.type == b"tEXt" and _keyword(c) in replaced)
    ]
    for keyword, text in texts.items():
        encoded = base64.b64encode(text.encode("utf-8"))
        kept.append(Chunk(b"tEXt", keyword.encode("latin-1") + b"\x00" + encoded))
    kept.append(Chunk(b"IEND", b""))
    return write_chunks(kept)


def strip_card(png: bytes) -> bytes:
    """``png`` without its card chunks: the bare avatar image."""
    return embed_texts(png, {})


def placeholder_png() -> bytes:
    """A one-pixel grey PNG, the avatar of a card that came without an image."""
    header = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    pixels = zlib.compress(b"\x00\x80")
    return write_chunks([Chunk(b"IHDR", header), Chunk(b"IDAT", pixels), Chunk(b"IEND", b"")])


def _card_chunks(png: bytes) -> dict[str, bytes]:
    texts = text_chunks(read_chunks(png))
    found = {k: texts[k] for k in CARD_KEYWORDS if k in texts}
    if not found:
        raise CardError(
            "no_card_chunk",
            "the PNG holds no character card: it has no tEXt chunk named 'chara' or 'ccv3'",
        )
    return found


def _decode(keyword: str, raw: bytes) -> str:
    try:
        # Some writers wrap the base64 over several lines.
        return base64.b64decode(b"".join(raw.split()), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        raise CardError(
            "bad_base64", f"the PNG's '{keyword}' chunk is not base64 of UTF-8 text"
        ) from None


def _keyword(chunk: Chunk) -> str:
    return chunk.data.partition(b"\x00")[0].decode("latin-1").lower()


def _name(kind: bytes) -> str:
    return kind.decode("latin-1", errors="replace")
