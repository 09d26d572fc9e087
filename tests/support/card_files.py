"""Real-format files for the card and lore tests, built here byte by byte.

The builders use only the standard library and none of troupe's writers,
so a reader is tested against files made the way other front ends make them.
"""

from __future__ import annotations

import base64
import io
import json
import struct
import zipfile
import zlib
from typing import Any

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def chunk(kind: bytes, data: bytes) -> bytes:
    """One PNG chunk with its length and CRC."""
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def text_chunk(keyword: str, value: bytes) -> bytes:
    """A tEXt chunk."""
    return chunk(b"tEXt", keyword.encode("latin-1") + b"\x00" + value)


def card_chunk(keyword: str, card: dict[str, Any]) -> bytes:
    """A tEXt chunk holding ``card`` as base64 of UTF-8 JSON, as front ends write it."""
    return text_chunk(keyword, base64.b64encode(json.dumps(card).encode("utf-8")))


def _ihdr() -> bytes:
    return chunk(b"IHDR", struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0))


def _pixels(shade: int) -> bytes:
    rows = b"".join(b"\x00" + bytes([shade, 40, 200]) * 2 for _ in range(2))
    return zlib.compress(rows)


def png(*extra: bytes, before_image: bytes = b"") -> bytes:
    """A 2x2 RGB PNG with a gAMA chunk, ``before_image`` chunks, then ``extra`` before IEND."""
    return (
        PNG_SIGNATURE
        + _ihdr()
        + chunk(b"gAMA", struct.pack(">I", 45455))
        + before_image
        + chunk(b"IDAT", _pixels(120))
        + b"".join(extra)
        + chunk(b"IEND", b"")
    )


def apng(*extra: bytes) -> bytes:
    """A two-frame APNG (acTL, fcTL, IDAT, fcTL, fdAT) with ``extra`` chunks before IEND."""
    frame = struct.pack(">IIIIIHHBB", 0, 2, 2, 0, 0, 1, 10, 0, 0)
    second = struct.pack(">IIIIIHHBB", 2, 2, 2, 0, 0, 1, 10, 0, 0)
    return (
        PNG_SIGNATURE
        + _ihdr()
        + chunk(b"acTL", struct.pack(">II", 2, 0))
        + chunk(b"fcTL", frame)
        + chunk(b"IDAT", _pixels(120))
        + chunk(b"fcTL", second)
        + chunk(b"fdAT", struct.pack(">I", 3) + _pixels(30))
        + b"".join(extra)
        + chunk(b"IEND", b"")
    )


def chunk_types(data: bytes) -> list[bytes]:
    """The chunk types of a PNG, in order (no checks: the tests' own reader)."""
    at, kinds = 8, []
    while at < len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        kinds.append(data[at + 4 : at + 8])
        at += 12 + length
    return kinds


def v1_card() -> dict[str, Any]:
    """A V1 card, with a key no spec knows (as old front ends wrote)."""
    return {
        "name": "Mira",
        "description": "{{char}} keeps the bar at the Brass Lantern.",
        "personality": "wry, watchful",
        "scenario": "A rainy night; <USER> walks in.",
        "first_mes": "*Mira looks up.* Evening, {{user}}.",
        "mes_example": "<START>\n{{user}}: hi\n{{char}}: What'll it be?\n<START>\n<USER>: bye",
        "talkativeness": "0.5",
        "avatar": "none",
    }


def character_book() -> dict[str, Any]:
    """A V2 character_book with entries as SillyTavern exports them."""
    return {
        "name": "Lantern lore",
        "scan_depth": 3,
        "token_budget": 500,
        "recursive_scanning": True,
        "extensions": {"x_editor": {"theme": "dark"}},
        "entries": [
            {
                "keys": ["brass key"],
                "content": "The brass key opens the cellar.",
                "extensions": {"position": 1, "depth": 4, "selectiveLogic": 0},
                "enabled": True,
                "insertion_order": 10,
                "id": 0,
                "comment": "key",
                "selective": False,
                "secondary_keys": [],
                "constant": False,
                "position": "after_char",
            },
            {
                "keys": ["/cell(ar|ars)\\b/i"],
                "content": "The cellar floods at high tide.",
                "extensions": {},
                "enabled": True,
                "insertion_order": 20,
                "id": 1,
                "unknown_entry_key": [1, 2, 3],
            },
        ],
    }


def v2_card(**data: Any) -> dict[str, Any]:
    """A V2 card with a character_book, extensions and unknown keys at every level."""
    fields: dict[str, Any] = {
        "name": "Mira",
        "description": "{{char}} keeps the bar.",
        "personality": "wry",
        "scenario": "A rainy night.",
        "first_mes": "Evening, {{user}}.",
        "mes_example": "<START>\n{{user}}: hi\n{{char}}: hello",
        "creator_notes": "Made for rainy evenings.",
        "system_prompt": "{{original}}\nStay in character as {{char}}.",
        "post_history_instructions": "Keep replies short.",
        "alternate_greetings": ["*wipes a glass* You again, {{user}}?"],
        "character_book": character_book(),
        "tags": ["fantasy", "tavern"],
        "creator": "someone",
        "character_version": "1.2",
        "extensions": {"talkativeness": "0.5", "depth_prompt": {"prompt": "x", "depth": 4}},
        "data_unknown": {"kept": True},
    }
    fields.update(data)
    return {
        "spec": "chara_card_v2",
        "spec_version": "2.0",
        "data": fields,
        "name": "Mira",
        "root_unknown": "kept",
    }


def v3_card(**data: Any) -> dict[str, Any]:
    """A V3 card with a nickname, group-only greetings, assets and a decorated book entry."""
    card = v2_card(**data)
    card["spec"] = "chara_card_v3"
    card["spec_version"] = "3.0"
    fields = card["data"]
    fields.setdefault("nickname", "Mimi")
    fields.setdefault("group_only_greetings", ["Evening, all of you."])
    fields.setdefault("source", ["https://example.org/mira"])
    fields.setdefault("creation_date", 1700000000)
    fields.setdefault(
        "assets",
        [
            {
                "type": "icon",
                "uri": "embeded://assets/icon/images/main.png",
                "name": "main",
                "ext": "png",
            },
            {
                "type": "background",
                "uri": "embeded://assets/background/images/bar.png",
                "name": "bar",
                "ext": "png",
            },
        ],
    )
    fields["character_book"]["entries"].append(
        {
            "keys": ["storm"],
            "content": "@@depth 2\n@@x_custom 7\nStorms close the harbour.",
            "extensions": {},
            "enabled": True,
            "insertion_order": 5,
            "use_regex": False,
        }
    )
    return card


def world_info() -> dict[str, Any]:
    """A SillyTavern world-info file (entries keyed by uid, ST's own field names)."""

    def entry(uid: int, key: list[str], content: str, **more: Any) -> dict[str, Any]:
        base: dict[str, Any] = {
            "uid": uid,
            "key": key,
            "keysecondary": [],
            "comment": f"entry {uid}",
            "content": content,
            "constant": False,
            "vectorized": False,
            "selective": True,
            "selectiveLogic": 0,
            "addMemo": True,
            "order": 100,
            "position": 0,
            "disable": False,
            "excludeRecursion": False,
            "preventRecursion": False,
            "probability": 100,
            "useProbability": True,
            "depth": 4,
            "group": "",
            "scanDepth": None,
            "caseSensitive": None,
            "matchWholeWords": None,
            "displayIndex": uid,
        }
        base.update(more)
        return base

    return {
        "entries": {
            "0": entry(0, ["harbour"], "The harbour is run by the Guild."),
            "1": entry(1, ["Guild"], "The Guild answers to the Baron.", order=50),
            "2": entry(2, ["Baron"], "The Baron is old.", order=10),
            "3": entry(3, [], "It is always raining.", constant=True, order=1),
        },
        "originalData": {"from": "somewhere"},
    }


def lorebook_v3() -> dict[str, Any]:
    """A V3 lorebook file."""
    book = character_book()
    for entry in book["entries"]:
        entry["use_regex"] = False
    return {"spec": "lorebook_v3", "data": book, "x_unknown": 1}


def charx(card: dict[str, Any], files: dict[str, bytes], *, card_name: str = "card.json") -> bytes:
    """A CHARX zip: ``card`` as ``card.json`` and ``files`` by path."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr(card_name, json.dumps(card))
        for path, content in files.items():
            z.writestr(path, content)
    return out.getvalue()


def st_chat_lines() -> list[dict[str, Any]]:
    """A SillyTavern chat as its lines: a header, then messages, one with swipes."""
    return [
        {
            "user_name": "Ada",
            "character_name": "Mira",
            "create_date": "2024-05-01@12h00m00s",
            "chat_metadata": {"note_prompt": "", "integrity": "abc"},
        },
        {
            "name": "Mira",
            "is_user": False,
            "is_system": False,
            "send_date": "May 1, 2024 12:00pm",
            "mes": "Evening, Ada.",
            "extra": {},
        },
        {
            "name": "Ada",
            "is_user": True,
            "is_system": False,
            "send_date": "May 1, 2024 12:01pm",
            "mes": "A brass key, Mira.",
            "extra": {"bias": ""},
            "force_avatar": "User Avatars/ada.png",
        },
        {
            "name": "Mira",
            "is_user": False,
            "send_date": 1714564920000,
            "mes": "Second try.",
            "swipes": ["First try.", "Second try."],
            "swipe_id": 1,
            "swipe_info": [{"send_date": "x", "extra": {}}, {"send_date": "y", "extra": {}}],
            "extra": {"api": "openai", "model": "x"},
        },
    ]


def jsonl(lines: list[dict[str, Any]]) -> bytes:
    """Lines as JSON Lines bytes."""
    return ("\n".join(json.dumps(line) for line in lines) + "\n").encode("utf-8")


def huge_charx(megabytes: int = 102) -> bytes:
    """A small CHARX whose entries would unpack past 100 MiB (zeros deflate to almost nothing)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("card.json", json.dumps(v3_card()))
        for n in range(2):
            with z.open(f"assets/other/zeros{n}.bin", "w") as f:
                for _ in range(megabytes // 2):
                    f.write(bytes(1024 * 1024))
    return out.getvalue()


def text_chunks(data: bytes) -> dict[str, bytes]:
    """The tEXt chunks of a PNG by keyword (no checks: the tests' own reader)."""
    at, found = 8, {}
    while at < len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        if data[at + 4 : at + 8] == b"tEXt":
            keyword, _, value = data[at + 8 : at + 8 + length].partition(b"\x00")
            found[keyword.decode("latin-1")] = value
        at += 12 + length
    return found


def chunk_card(data: bytes, keyword: str) -> dict[str, Any]:
    """The card a PNG's ``keyword`` chunk holds, decoded with the standard library."""
    loaded: dict[str, Any] = json.loads(base64.b64decode(text_chunks(data)[keyword]))
    return loaded
