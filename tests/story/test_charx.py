"""CHARX: a V3 card in a zip with its assets, read within limits and written back whole."""

from __future__ import annotations

import io
import json
import zipfile

import pytest

from story import (
    MAX_CHARX_UNPACKED,
    CardError,
    card_v3_json,
    read_card_json,
    read_charx,
    read_import,
    write_charx,
)
from tests.support.card_files import charx, png, v2_card, v3_card

ICON = png()
BACKGROUND = b"\x89PNG-not-really-but-kept-as-bytes"


def sample() -> bytes:
    return charx(
        v3_card(),
        {
            "assets/icon/images/main.png": ICON,
            "assets/background/images/bar.png": BACKGROUND,
            "x_risu/module.json": b'{"app": "data"}',
        },
    )


def test_a_charx_is_read_with_its_icon_and_embedded_assets() -> None:
    read = read_charx(sample())
    assert read.card.spec == "v3"
    assert read.card.name == "Mira"
    assert read.icon() == ICON
    assert read.asset("embeded://assets/background/images/bar.png") == BACKGROUND
    assert read.asset("https://example.org/x.png") is None
    assert read.file("x_risu/module.json") == b'{"app": "data"}'


def test_import_keeps_the_icon_as_the_avatar() -> None:
    imported = read_import(sample())
    assert imported.avatar == ICON
    assert dict(imported.files)["assets/background/images/bar.png"] == BACKGROUND


def test_writing_a_charx_back_gives_the_same_card_and_files() -> None:
    read = read_charx(sample())
    again = read_charx(write_charx(read.card, dict(read.files)))
    assert card_v3_json(again.card) == v3_card()
    assert dict(again.files) == dict(read.files)


def test_a_v2_card_goes_into_a_charx_as_v3() -> None:
    card = read_card_json(json.dumps(v2_card()))
    out = read_charx(write_charx(card, {"assets/icon/images/main.png": ICON}))
    assert out.card.spec == "v3"
    assert out.card.description == card.description


def test_a_charx_without_card_json_is_refused() -> None:
    data = charx(v3_card(), {}, card_name="cards/card.json")
    with pytest.raises(CardError) as caught:
        read_charx(data)
    assert caught.value.code == "bad_charx"
    assert "card.json" in caught.value.message


def test_a_zip_that_is_not_one_is_refused() -> None:
    with pytest.raises(CardError) as caught:
        read_charx(b"PK\x03\x04" + b"\x00" * 40)
    assert caught.value.code == "bad_charx"


@pytest.mark.parametrize(
    "name",
    ["../evil.txt", "/etc/passwd", "assets/../../evil", "C:/evil", "assets\\..\\evil", "./x"],
)
def test_names_that_escape_the_root_are_refused(name: str) -> None:
    with pytest.raises(CardError) as caught:
        read_charx(charx(v3_card(), {name: b"x"}))
    assert caught.value.code == "charx_path"


def test_entries_that_would_unpack_past_the_limit_are_refused_before_unpacking() -> None:
    # A zip bomb: 101 MiB of zeros deflates to about 100 KiB.
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("card.json", json.dumps(v3_card()))
        with z.open("assets/other/zeros.bin", "w") as f:
            chunk = bytes(1024 * 1024)
            for _ in range(MAX_CHARX_UNPACKED // len(chunk) + 1):
                f.write(chunk)
    data = out.getvalue()
    assert len(data) < 1024 * 1024
    with pytest.raises(CardError) as caught:
        read_charx(data)
    assert caught.value.code == "charx_too_large"


def test_an_entry_that_lies_about_its_size_is_refused() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as z:
        z.writestr("card.json", json.dumps(v3_card()))
        z.writestr("assets/a.bin", b"0123456789")
    data = bytearray(out.getvalue())
    # Make both the local and the central header claim 4 bytes instead of 10.
    for at in range(len(data) - 4):
        if data[at : at + 4] in (b"PK\x03\x04", b"PK\x01\x02"):
            size_at = at + (22 if data[at + 2] == 3 else 24)
            name_len_at = at + (26 if data[at + 2] == 3 else 28)
            name_len = int.from_bytes(data[name_len_at : name_len_at + 2], "little")
            name_at = at + (30 if data[at + 2] == 3 else 46)
            if bytes(data[name_at : name_at + name_len]) == b"assets/a.bin":
                data[size_at : size_at + 4] = (4).to_bytes(4, "little")
    with pytest.raises(CardError) as caught:
        read_charx(bytes(data))
    assert caught.value.code in ("charx_too_large", "bad_charx")
    assert "assets/a.bin" in caught.value.message


def test_a_bad_card_json_inside_is_refused_with_its_own_code() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("card.json", "{not json")
    with pytest.raises(CardError) as caught:
        read_charx(out.getvalue())
    assert caught.value.code == "bad_json"
    assert "card.json" in caught.value.message
