"""PNG and APNG cards: chunks read with CRCs, card chunks found, everything else kept."""

from __future__ import annotations

import base64
import json

import pytest

from story import CardError, card_text, card_texts, embed_texts, read_chunks, strip_card
from tests.support.card_files import (
    apng,
    card_chunk,
    chunk,
    chunk_types,
    png,
    text_chunk,
    v2_card,
    v3_card,
)


def test_a_v2_card_is_read_from_its_chara_chunk() -> None:
    texts = card_texts(png(card_chunk("chara", v2_card())))
    assert list(texts) == ["chara"]
    assert json.loads(texts["chara"]) == v2_card()


def test_both_chunks_are_found() -> None:
    texts = card_texts(png(card_chunk("chara", v2_card()), card_chunk("ccv3", v3_card())))
    assert json.loads(texts["ccv3"])["spec"] == "chara_card_v3"
    assert json.loads(texts["chara"])["spec"] == "chara_card_v2"


def test_an_apng_is_read_like_a_png() -> None:
    data = apng(card_chunk("chara", v2_card()))
    assert json.loads(card_texts(data)["chara"])["data"]["name"] == "Mira"
    assert [c.type for c in read_chunks(data)][:4] == [b"IHDR", b"acTL", b"fcTL", b"IDAT"]


def test_embedding_replaces_only_the_card_chunks_and_keeps_the_rest_in_order() -> None:
    other = text_chunk("Software", b"an editor")
    asset = text_chunk("chara-ext-asset_:1", base64.b64encode(b"\x00bytes"))
    original = apng(card_chunk("chara", {"name": "Old"}), other, asset)
    out = embed_texts(original, {"chara": '{"name": "New"}', "ccv3": '{"name": "V3"}'})
    assert chunk_types(out) == [
        b"IHDR",
        b"acTL",
        b"fcTL",
        b"IDAT",
        b"fcTL",
        b"fdAT",
        b"tEXt",
        b"tEXt",
        b"tEXt",
        b"tEXt",
        b"IEND",
    ]
    texts = card_texts(out)
    assert texts == {"chara": '{"name": "New"}', "ccv3": '{"name": "V3"}'}
    kept = [c for c in read_chunks(out) if c.type != b"tEXt"]
    assert kept == [c for c in read_chunks(original) if c.type != b"tEXt"]
    assert read_chunks(out)[6].data.startswith(b"Software\x00")


def test_the_bare_avatar_has_no_card_chunk() -> None:
    bare = strip_card(png(card_chunk("chara", v2_card())))
    assert b"tEXt" not in chunk_types(bare)
    with pytest.raises(CardError) as caught:
        card_texts(bare)
    assert caught.value.code == "no_card_chunk"


def test_utf8_survives_base64() -> None:
    card = {"name": "Zoë", "description": "雨の夜 🌧"}
    out = embed_texts(png(), {"ccv3": json.dumps(card, ensure_ascii=False)})
    assert json.loads(card_texts(out)["ccv3"]) == card


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (png(), "no_card_chunk"),
        (png(text_chunk("chara", b"not base64 at all!!")), "bad_base64"),
        (png(text_chunk("chara", base64.b64encode(b"\xff\xfe\xfa"))), "bad_base64"),
        (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", b"x" * 13)[:10], "bad_png"),
        (png()[:-12], "bad_png"),
        (b"GIF89a....", "bad_png"),
    ],
    ids=["no chunk", "not base64", "not utf8", "cut short", "no IEND", "not a png"],
)
def test_broken_files_are_refused_with_their_code(data: bytes, code: str) -> None:
    with pytest.raises(CardError) as caught:
        card_texts(data)
    assert caught.value.code == code
    assert caught.value.message


def test_a_chunk_with_a_wrong_crc_is_refused() -> None:
    good = png(card_chunk("chara", v2_card()))
    at = good.index(b"tEXt") + 10
    broken = good[:at] + bytes([good[at] ^ 1]) + good[at + 1 :]
    with pytest.raises(CardError) as caught:
        card_texts(broken)
    assert caught.value.code == "bad_png"
    assert "CRC" in caught.value.message


def test_old_writers_chara_keyword_and_wrapped_base64_are_read() -> None:
    encoded = base64.b64encode(json.dumps({"name": "Old"}).encode())
    wrapped = b"\n".join(encoded[i : i + 16] for i in range(0, len(encoded), 16))
    assert json.loads(card_texts(png(text_chunk("Chara", wrapped)))["chara"]) == {"name": "Old"}


def test_a_broken_v2_copy_does_not_stop_a_sound_v3_card() -> None:
    data = png(text_chunk("chara", b"%%% broken %%%"), card_chunk("ccv3", v3_card()))
    assert card_text(data)[0] == "ccv3"
    assert json.loads(card_text(data)[1]) == v3_card()
