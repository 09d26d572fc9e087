"""Character cards V1/V2/V3: read, written back field for field, upgraded without loss."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from story import (
    BACKFILL_NOTE,
    CardError,
    card_greetings,
    card_sections,
    card_texts,
    card_v2_json,
    card_v3_json,
    char_name,
    fill_macros,
    read_card_json,
    read_card_png,
    read_import,
    replace_macros,
    write_card_png,
)
from tests.support.card_files import card_chunk, png, v1_card, v2_card, v3_card


def test_a_v1_card_is_read() -> None:
    card = read_card_json(json.dumps(v1_card()))
    assert card.spec == "v1"
    assert card.name == "Mira"
    assert card.personality == "wry, watchful"
    assert card.book is None


def test_a_v1_card_moves_up_to_v2_and_v3_with_every_key_kept() -> None:
    original = v1_card()
    card = read_card_json(json.dumps(original))
    for doc, spec in (
        (card_v2_json(card), "chara_card_v2"),
        (card_v3_json(card), "chara_card_v3"),
    ):
        assert doc["spec"] == spec
        for key, value in original.items():
            assert doc[key] == value  # every V1 key, unknown ones too, where it was
        for key in ("name", "description", "personality", "scenario", "first_mes", "mes_example"):
            assert doc["data"][key] == original[key]
        assert doc["data"]["extensions"] == {}
        assert doc["data"]["alternate_greetings"] == []
        again = read_card_json(json.dumps(doc))
        assert (again.name, again.description, again.mes_example) == (
            card.name,
            card.description,
            card.mes_example,
        )
    assert card_v3_json(card)["data"]["group_only_greetings"] == []


def test_a_v2_card_gives_back_its_document_field_for_field() -> None:
    original = v2_card()
    card = read_card_json(json.dumps(original))
    assert card.spec == "v2"
    assert card_v2_json(card) == original
    assert card.tags == ("fantasy", "tavern")
    assert card.book is not None and len(card.book.entries) == 2


def test_a_v2_card_as_v3_keeps_everything_and_adds_what_v3_requires() -> None:
    original = v2_card()
    up = card_v3_json(read_card_json(json.dumps(original)))
    assert up["spec"] == "chara_card_v3" and up["spec_version"] == "3.0"
    assert up["root_unknown"] == "kept"
    assert up["data"]["data_unknown"] == {"kept": True}
    assert up["data"]["extensions"] == original["data"]["extensions"]
    assert up["data"]["group_only_greetings"] == []
    entries = up["data"]["character_book"]["entries"]
    assert entries[1]["unknown_entry_key"] == [1, 2, 3]
    assert all(e["use_regex"] is False for e in entries)
    back = dict(up["data"])
    del back["group_only_greetings"]
    for entry in back["character_book"]["entries"]:
        del entry["use_regex"]
    assert back == original["data"]


def test_a_v3_card_gives_back_its_document_and_backfills_v2_with_the_note() -> None:
    original = v3_card()
    card = read_card_json(json.dumps(original))
    assert card.spec == "v3"
    assert card.nickname == "Mimi"
    assert card.group_only_greetings == ("Evening, all of you.",)
    assert [a.name for a in card.assets] == ["main", "bar"]
    assert card_v3_json(card) == original
    down = card_v2_json(card)
    assert down["spec"] == "chara_card_v2"
    assert down["data"]["creator_notes"].startswith(BACKFILL_NOTE)
    assert down["data"]["creator_notes"].endswith("Made for rainy evenings.")
    assert down["data"]["nickname"] == "Mimi"  # never destroyed, even for V2 readers


def test_a_v3_card_without_assets_uses_its_own_image() -> None:
    card_doc = v3_card()
    del card_doc["data"]["assets"]
    card = read_card_json(json.dumps(card_doc))
    assert [(a.type, a.uri, a.name) for a in card.assets] == [("icon", "ccdefault:", "main")]


def test_the_v3_chunk_is_preferred_when_both_exist() -> None:
    data = png(card_chunk("chara", v2_card(name="Old Mira")), card_chunk("ccv3", v3_card()))
    imported = read_card_png(data)
    assert imported.card.spec == "v3"
    assert imported.card.name == "Mira"
    assert imported.avatar is not None and b"tEXt" not in imported.avatar


def test_a_v2_png_card_keeps_its_book_and_its_avatar() -> None:
    imported = read_import(png(card_chunk("chara", v2_card())))
    assert imported.card.book is not None
    assert imported.card.book.name == "Lantern lore"
    assert imported.avatar is not None
    assert imported.avatar.startswith(b"\x89PNG")


def test_an_exported_png_carries_both_chunks_and_reads_back_the_same() -> None:
    original = v2_card()
    imported = read_import(png(card_chunk("chara", original)))
    out = write_card_png(imported.card, imported.avatar)
    again = read_card_png(out)
    assert again.card.spec == "v3"
    assert card_v3_json(again.card) == card_v3_json(imported.card)
    texts = card_texts(out)
    assert json.loads(texts["chara"]) == original
    assert again.avatar == imported.avatar


def test_a_card_without_an_image_gets_a_placeholder_avatar() -> None:
    card = read_card_json(json.dumps(v1_card()))
    out = write_card_png(card)
    assert read_card_png(out).card.name == "Mira"


@pytest.mark.parametrize(
    ("doc", "code"),
    [
        ({"description": "nameless"}, "no_name"),
        ({"name": "   "}, "no_name"),
        (
            {"spec": "chara_card_v2", "spec_version": "2.0", "data": {"description": "x"}},
            "no_name",
        ),
        ({"spec": "chara_card_v2", "data": "oops"}, "bad_card"),
        ({"name": "Mira", "description": 7}, "bad_card"),
        ({"name": "Mira", "alternate_greetings": [1]}, "bad_card"),
        ({"spec": "chara_card_v9", "data": {"name": "x"}}, "bad_card"),
        ({"name": "Mira", "character_book": {"entries": "none"}}, "bad_lorebook"),
        ([1, 2], "bad_json"),
    ],
)
def test_bad_cards_are_refused_naming_the_problem(doc: Any, code: str) -> None:
    with pytest.raises(CardError) as caught:
        read_card_json(json.dumps(doc))
    assert caught.value.code == code


def test_invalid_json_names_where_it_broke() -> None:
    with pytest.raises(CardError) as caught:
        read_card_json('{"name": "Mira",\n "description": }')
    assert caught.value.code == "bad_json"
    assert "line 2" in caught.value.message


def test_a_numeric_character_version_is_read_as_text_and_kept_as_a_number() -> None:
    doc = v2_card(character_version=2)
    card = read_card_json(json.dumps(doc))
    assert card.character_version == "2"
    assert card_v2_json(card)["data"]["character_version"] == 2


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)
unknown_keys = st.dictionaries(
    st.text(min_size=1, max_size=10).filter(lambda k: k not in {"spec", "spec_version", "data"}),
    json_values,
    max_size=4,
)


@settings(max_examples=60, deadline=None)
@given(root=unknown_keys, data=unknown_keys, ext=unknown_keys, entry=unknown_keys)
def test_random_unknown_keys_survive_every_round_trip(
    root: dict[str, Any], data: dict[str, Any], ext: dict[str, Any], entry: dict[str, Any]
) -> None:
    doc = v2_card()
    doc["data"]["extensions"] = ext
    for key, value in data.items():
        doc["data"].setdefault("x_" + key, value)
    for key, value in root.items():
        doc.setdefault("x_" + key, value)
    doc["data"]["character_book"]["entries"][0]["extensions"] = entry
    card = read_card_json(json.dumps(doc))
    assert card_v2_json(card) == doc
    via_png = read_card_png(write_card_png(card))
    up = card_v3_json(via_png.card)
    assert up["data"]["extensions"] == ext
    assert up["data"]["character_book"]["entries"][0]["extensions"] == entry
    for key in root:
        assert up["x_" + key] == doc["x_" + key]
    for key in data:
        assert up["data"]["x_" + key] == doc["data"]["x_" + key]


def test_sections_replace_macros_and_split_examples() -> None:
    card = read_card_json(json.dumps(v1_card()))
    sections = card_sections(card, "Ada")
    kinds = [(s.kind, s.text) for s in sections]
    assert kinds == [
        ("description", "Mira keeps the bar at the Brass Lantern."),
        ("personality", "wry, watchful"),
        ("scenario", "A rainy night; Ada walks in."),
        ("example", "Ada: hi\nMira: What'll it be?"),
        ("example", "Ada: bye"),
    ]
    assert min(sections, key=lambda s: s.cut_rank).kind == "example"


def test_system_prompt_and_post_history_wrap_the_defaults_with_original() -> None:
    card = read_card_json(json.dumps(v2_card()))
    sections = {s.kind: s.text for s in card_sections(card, "Ada", default_system="Be vivid.")}
    assert sections["system_prompt"] == "Be vivid.\nStay in character as Mira."
    assert sections["post_history_instructions"] == "Keep replies short."
    plain = read_card_json(json.dumps(v2_card(system_prompt="")))
    first = card_sections(plain, "Ada", default_system="Be vivid.")[0]
    assert (first.kind, first.text) == ("system_prompt", "Be vivid.")


def test_fields_for_browsing_never_reach_a_prompt() -> None:
    doc = v2_card(
        creator_notes="SECRET-NOTES",
        tags=["SECRET-TAG"],
        creator="SECRET-CREATOR",
        character_version="SECRET-VERSION",
    )
    card = read_card_json(json.dumps(doc))
    text = "\n".join(s.text for s in card_sections(card, "Ada"))
    text += "\n".join(card_greetings(card, "Ada", group=True))
    assert "SECRET" not in text


def test_a_nickname_replaces_char_and_group_greetings_join_in_a_group() -> None:
    card = read_card_json(json.dumps(v3_card()))
    assert char_name(card) == "Mimi"
    assert card_sections(card, "Ada")[1].text == "Mimi keeps the bar."
    assert card_greetings(card, "Ada") == ("Evening, Ada.", "*wipes a glass* You again, Ada?")
    assert card_greetings(card, "Ada", group=True)[-1] == "Evening, all of you."


def test_macros_are_case_insensitive_and_cover_the_old_forms() -> None:
    card = read_card_json(json.dumps(v1_card()))
    assert replace_macros("{{CHAR}} <bot> <Char> {{User}} <USER>", card, "Ada") == (
        "Mira Mira Mira Ada Ada"
    )


def test_a_lone_surrogate_is_refused_so_export_can_never_fail() -> None:
    with pytest.raises(CardError) as caught:
        read_card_json('{"name": "Mira", "description": "\\ud800 alone"}')
    assert caught.value.code == "bad_json"
    paired = read_card_json('{"name": "Mira", "description": "\\ud83c\\udf27 rain"}')
    assert paired.description == "🌧 rain"


def test_a_greeting_given_as_one_text_stays_one_greeting() -> None:
    card = read_card_json(json.dumps({"name": "Mira", "alternate_greetings": "Hi, you, there"}))
    assert card.alternate_greetings == ("Hi, you, there",)


def test_lore_and_other_text_can_fill_the_macros_with_the_names_in_the_scene() -> None:
    assert fill_macros("{{char}} nods at {{user}}; <BOT> waits.", "Tobias", "Ada") == (
        "Tobias nods at Ada; Tobias waits."
    )
