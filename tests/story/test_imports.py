"""One door for imported bytes: every format recognised, every bad file refused with its code."""

from __future__ import annotations

import base64
import io
import json
import zipfile

import pytest

from story import (
    MAX_IMPORT_BYTES,
    CardError,
    ImportedCard,
    ImportedChat,
    ImportedLorebook,
    detect,
    read_import,
)
from tests.support.card_files import (
    apng,
    card_chunk,
    charx,
    jsonl,
    lorebook_v3,
    png,
    st_chat_lines,
    text_chunk,
    v1_card,
    v2_card,
    v3_card,
    world_info,
)


def as_json(value: object) -> bytes:
    return json.dumps(value).encode("utf-8")


FILES = {
    "png_card": png(card_chunk("chara", v2_card())),
    "apng_card": apng(card_chunk("ccv3", v3_card())),
    "v1_json": as_json(v1_card()),
    "v2_json": as_json(v2_card()),
    "v3_json": b"\xef\xbb\xbf" + as_json(v3_card()),
    "charx": charx(v3_card(), {"assets/icon/images/main.png": png()}),
    "world_info": as_json(world_info()),
    "lorebook_v3": as_json(lorebook_v3()),
    "st_chat": jsonl(st_chat_lines()),
    "st_chat_header_only": jsonl(st_chat_lines()[:1]),
}
KINDS = {
    "png_card": "png_card",
    "apng_card": "png_card",
    "v1_json": "json_card",
    "v2_json": "json_card",
    "v3_json": "json_card",
    "charx": "charx",
    "world_info": "world_info",
    "lorebook_v3": "lorebook_v3",
    "st_chat": "st_chat",
    "st_chat_header_only": "st_chat",
}


@pytest.mark.parametrize("name", list(FILES))
def test_every_format_is_recognised_and_read(name: str) -> None:
    data = FILES[name]
    assert detect(data) == KINDS[name]
    imported = read_import(data)
    if KINDS[name] in ("png_card", "json_card", "charx"):
        assert isinstance(imported, ImportedCard)
        assert imported.card.name == "Mira"
        assert (imported.avatar is not None) == (KINDS[name] != "json_card")
    elif KINDS[name] == "st_chat":
        assert isinstance(imported, ImportedChat)
        assert imported.chat.character_name == "Mira"
    else:
        assert isinstance(imported, ImportedLorebook)
        assert imported.book.entries


def test_a_broken_regex_is_reported_not_refused() -> None:
    doc = world_info()
    doc["entries"]["0"]["key"] = ["/[oops/"]
    imported = read_import(as_json(doc))
    assert isinstance(imported, ImportedLorebook)
    assert [p.key for p in imported.problems] == ["/[oops/"]
    assert "entry 0" in imported.problems[0].entry


def _huge_charx() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("card.json", json.dumps(v3_card()))
        for n in range(2):
            with z.open(f"assets/other/zeros{n}.bin", "w") as f:
                for _ in range(51):
                    f.write(bytes(1024 * 1024))
    return out.getvalue()


BAD = {
    "gif": (b"GIF89a\x01\x00\x01\x00", "not_a_card"),
    "plain text": (b"Once upon a time", "not_a_card"),
    "json list": (b"[1, 2, 3]", "not_a_card"),
    "json with nothing known": (b'{"hello": "world"}', "not_a_card"),
    "binary": (bytes(range(256)), "not_a_card"),
    "png without a card": (png(text_chunk("Software", b"x")), "no_card_chunk"),
    "bad base64": (png(text_chunk("chara", b"%%%not-base64%%%")), "bad_base64"),
    "invalid json": (b'{"name": "Mira", "description": ', "bad_json"),
    "invalid json in the chunk": (
        png(text_chunk("chara", base64.b64encode(b'{"name": '))),
        "bad_json",
    ),
    "no name": (as_json({"description": "a nameless card"}), "no_name"),
    "no name in a png": (png(card_chunk("chara", v2_card(name=""))), "no_name"),
    "too large": (b" " * (MAX_IMPORT_BYTES + 1), "too_large"),
    "charx too large": (_huge_charx(), "charx_too_large"),
    "charx path": (charx(v3_card(), {"../../etc/cron.d/x": b"x"}), "charx_path"),
    "broken jsonl line": (
        jsonl(st_chat_lines()[:2]) + b'{"name": "Mira", "mes": "cut\n',
        "bad_jsonl",
    ),
}


@pytest.mark.parametrize("name", list(BAD))
def test_every_bad_file_is_refused_with_a_code_and_a_message(name: str) -> None:
    data, code = BAD[name]
    with pytest.raises(CardError) as caught:
        read_import(data)
    assert caught.value.code == code
    assert len(caught.value.message) > 20
