"""Lorebooks: three formats read and written back, and activation as a pure function of text."""

from __future__ import annotations

import json
from typing import Any

import pytest

from story import (
    CardError,
    Lorebook,
    LoreEntry,
    activate,
    lorebook_json,
    lorebook_v3_json,
    read_card_json,
    read_decorators,
    read_lorebook_v3,
    read_world_info,
    world_info_json,
)
from tests.support.card_files import lorebook_v3, v2_card, v3_card, world_info


def book(*entries: LoreEntry, **settings: Any) -> Lorebook:
    return Lorebook(format="lorebook_v3", name="test", entries=entries, **settings)


def entry(keys: tuple[str, ...] | str, content: str, **more: Any) -> LoreEntry:
    if isinstance(keys, str):
        keys = (keys,)
    return LoreEntry(label=content[:10], keys=keys, content=content, **more)


def contents(books: list[Lorebook], messages: list[str], **kw: Any) -> list[str]:
    return [a.content for a in activate(books, messages, **kw).entries]


# --- formats ---------------------------------------------------------------


def test_world_info_is_read_with_its_own_field_names() -> None:
    wi = read_world_info(json.dumps(world_info()))
    assert wi.format == "world_info"
    assert [e.keys for e in wi.entries] == [("harbour",), ("Guild",), ("Baron",), ()]
    assert wi.entries[3].constant
    assert wi.entries[1].insertion_order == 50
    assert wi.recursive_scanning
    assert lorebook_json(wi) == world_info()


def test_a_lorebook_v3_file_is_read_and_written_back() -> None:
    lb = read_lorebook_v3(json.dumps(lorebook_v3()))
    assert (lb.name, lb.scan_depth, lb.token_budget) == ("Lantern lore", 3, 500)
    assert lb.entries[0].position == "after_char"
    assert lorebook_json(lb) == lorebook_v3()


def test_a_cards_book_keeps_decorators_and_unknown_fields() -> None:
    card = read_card_json(json.dumps(v3_card()))
    assert card.book is not None
    raw = card.book.original()
    assert raw["entries"][1]["unknown_entry_key"] == [1, 2, 3]
    assert raw["entries"][2]["content"].startswith("@@depth 2\n@@x_custom 7\n")
    assert raw == v3_card()["data"]["character_book"]


def test_an_invalid_regex_is_reported_on_import_and_never_matches() -> None:
    doc = v2_card()
    doc["data"]["character_book"]["entries"][0]["keys"] = ["/(unclosed/", "plain"]
    card = read_card_json(json.dumps(doc))
    assert [(p.key, "invalid regular expression" in p.message) for p in card.problems] == [
        ("/(unclosed/", True)
    ]
    bad = entry("/(unclosed/", "never")
    assert contents([book(bad)], ["(unclosed and more"]) == []


@pytest.mark.parametrize(
    ("doc", "reader"),
    [
        ({"entries": 5}, read_world_info),
        ({"entries": {"0": "text"}}, read_world_info),
        ({"entries": {"0": {"key": 7, "content": ""}}}, read_world_info),
        ({"spec": "lorebook_v3", "data": []}, read_lorebook_v3),
        ({"spec": "lorebook_v3", "data": {"entries": {}}}, read_lorebook_v3),
    ],
)
def test_broken_books_are_refused(doc: Any, reader: Any) -> None:
    with pytest.raises(CardError) as caught:
        reader(json.dumps(doc))
    assert caught.value.code == "bad_lorebook"


# --- activation ------------------------------------------------------------


def test_a_key_wakes_an_entry_case_insensitively_by_default() -> None:
    lore = book(entry("Brass Key", "The key opens the cellar."))
    assert contents([lore], ["She holds a brass key."]) == ["The key opens the cellar."]
    assert contents([lore], ["She holds a copper key."]) == []


def test_case_sensitive_keys() -> None:
    lore = book(entry("Rose", "Rose is the baker.", case_sensitive=True))
    assert contents([lore], ["a rose by the door"]) == []
    assert contents([lore], ["Rose waves"]) == ["Rose is the baker."]


def test_whole_words_when_asked() -> None:
    lore = book(entry("king", "The king is ill.", whole_words=True))
    assert contents([lore], ["not to my liking"]) == []
    assert contents([lore], ["long live the king!"]) == ["The king is ill."]


def test_regex_keys_in_both_forms() -> None:
    slashed = entry("/cell(ar|ars)\\b/i", "Cellars flood.")
    v3 = entry("harbou?r", "The harbour.", use_regex=True)
    lore = book(slashed, v3)
    assert contents([lore], ["The CELLAR is dark", "by the harbor"]) == [
        "Cellars flood.",
        "The harbour.",
    ]
    assert contents([lore], ["cell"]) == []


def test_disabled_and_empty_entries_never_activate_and_constant_ones_always_do() -> None:
    lore = book(
        entry("rain", "Off.", enabled=False),
        entry("rain", "   "),
        entry((), "Always.", constant=True),
    )
    assert contents([lore], ["rain"]) == ["Always."]
    assert contents([lore], []) == ["Always."]


@pytest.mark.parametrize(
    ("logic", "text", "wakes"),
    [
        ("and_any", "the key and the door", True),
        ("and_any", "the key alone", False),
        ("and_all", "the key, the door and the lock", True),
        ("and_all", "the key and the door", False),
        ("not_any", "the key alone", True),
        ("not_any", "the key and the lock", False),
        ("not_all", "the key and the door", True),
        ("not_all", "the key, the door and the lock", False),
    ],
)
def test_secondary_keys_follow_the_selective_logic(logic: Any, text: str, wakes: bool) -> None:
    e = entry("key", "Lore.", secondary_keys=("door", "lock"), selective=True, logic=logic)
    assert contents([book(e)], [text]) == (["Lore."] if wakes else [])


def test_secondary_keys_are_ignored_when_not_selective() -> None:
    e = entry("key", "Lore.", secondary_keys=("door",), selective=False)
    assert contents([book(e)], ["a key"]) == ["Lore."]


def test_world_info_selective_logic_numbers_are_kept_and_applied() -> None:
    doc = world_info()
    doc["entries"]["0"].update(keysecondary=["Guild"], selectiveLogic=2)  # NOT ANY
    wi = read_world_info(json.dumps(doc))
    assert wi.entries[0].logic == "not_any"
    assert lorebook_json(wi)["entries"]["0"]["selectiveLogic"] == 2
    plain = Lorebook("world_info", "x", (wi.entries[0],))
    assert contents([plain], ["the harbour"]) == ["The harbour is run by the Guild."]
    assert contents([plain], ["the harbour Guild"]) == []


def test_scan_depth_limits_the_messages_scanned() -> None:
    lore = book(entry("dragon", "Dragons."), scan_depth=2)
    assert contents([lore], ["a dragon", "one", "two"]) == []
    assert contents([lore], ["one", "a dragon", "two"]) == ["Dragons."]
    deep = book(entry("dragon", "Dragons.", scan_depth=3), scan_depth=1)
    assert contents([deep], ["a dragon", "one", "two"]) == ["Dragons."]
    none = book(entry("dragon", "Dragons."), scan_depth=0)
    assert contents([none], ["a dragon"]) == []


def test_insertion_order_orders_the_entries_and_position_is_kept() -> None:
    lore = book(
        entry("a", "Third.", insertion_order=30),
        entry("a", "First.", insertion_order=1, position="after_char"),
        entry("a", "Second.", insertion_order=2),
    )
    result = activate([lore], ["a"]).entries
    assert [a.content for a in result] == ["First.", "Second.", "Third."]
    assert result[0].position == "after_char"


def test_the_token_budget_drops_the_lowest_priority_first() -> None:
    lore = book(
        entry("a", "x" * 40, priority=5, insertion_order=1),  # 10 tokens each
        entry("a", "y" * 40, priority=1, insertion_order=2),
        entry("a", "z" * 40, priority=9, insertion_order=3),
        token_budget=20,
    )
    result = activate([lore], ["a"])
    assert [a.content[0] for a in result.entries] == ["x", "z"]
    assert [a.content[0] for a in result.dropped] == ["y"]


def test_without_priority_the_budget_drops_the_lowest_insertion_order() -> None:
    lore = book(entry("a", "x" * 40, insertion_order=1), entry("a", "y" * 40, insertion_order=2))
    result = activate([lore], ["a"], token_budget=10)
    assert [a.content[0] for a in result.entries] == ["y"]


def test_recursion_follows_content_and_is_bounded() -> None:
    wi = read_world_info(json.dumps(world_info()))
    assert contents([wi], ["To the harbour!"]) == [
        "It is always raining.",
        "The Baron is old.",
        "The Guild answers to the Baron.",
        "The harbour is run by the Guild.",
    ]
    assert contents([wi], ["To the harbour!"], max_recursion=1) == [
        "It is always raining.",
        "The Guild answers to the Baron.",
        "The harbour is run by the Guild.",
    ]
    flat = Lorebook("lorebook_v3", "x", wi.entries, recursive_scanning=False)
    assert contents([flat], ["To the harbour!"]) == [
        "It is always raining.",
        "The harbour is run by the Guild.",
    ]


def test_a_cycle_of_entries_ends() -> None:
    lore = book(entry("a", "mentions b"), entry("b", "mentions a"), recursive_scanning=True)
    assert contents([lore], ["a"], max_recursion=50) == ["mentions b", "mentions a"]


def test_recursion_respects_exclude_and_prevent() -> None:
    lore = book(
        entry("start", "go to the mill", prevent_recursion=True),
        entry("mill", "The mill."),
        entry("begin", "see the tower"),
        entry("tower", "The tower.", exclude_recursion=True),
        recursive_scanning=True,
    )
    assert contents([lore], ["start begin"]) == ["go to the mill", "see the tower"]


def test_decorators_are_applied_and_stripped_from_the_prompt_text() -> None:
    lore = book(
        entry("storm", "@@depth 2\n@@x_custom 7\nStorms close the harbour."),
        entry("storm", "@@dont_activate\nNever."),
        entry("nothing", "@@activate\nForced."),
        entry("storm", "@@exclude_keys calm\nOnly when not calm."),
        entry("storm", "@@additional_keys night\nStorm at night."),
        entry("storm", "@@unknown_thing\n@@@scan_depth 1\nRecent storms."),
    )
    found = activate([lore], ["a storm", "at night"]).entries
    assert [a.content for a in found] == [
        "Storms close the harbour.",
        "Forced.",
        "Only when not calm.",
        "Storm at night.",
    ]
    assert (found[0].position, found[0].depth) == ("at_depth", 2)
    assert contents([lore], ["calm storm"]) == [
        "Storms close the harbour.",
        "Forced.",
        "Recent storms.",
    ]


def test_read_decorators_keeps_the_first_of_a_name() -> None:
    deco = read_decorators("@@scan_depth 3\n@@scan_depth 9\n\nBody\n@@not_a_decorator here")
    assert deco.get("scan_depth") == "3"
    assert deco.body == "Body\n@@not_a_decorator here"


def test_witness_scoping_the_same_book_wakes_only_what_each_witnessed() -> None:
    """X's prompt scans only what X witnessed; Y's book reaches only Y's prompt."""
    shared = book(entry("brass key", "The key opens the cellar."))
    ys_own = book(entry("cellar", "Y hid the gold in the cellar."), recursive_scanning=True)
    witnessed_by_x = ["Mira pours a drink.", "The stranger sits down."]
    witnessed_by_y = [
        "Mira pours a drink.",
        "*slides a brass key to Y*",
        "The stranger sits down.",
    ]
    assert contents([shared], witnessed_by_x) == []
    assert contents([shared], witnessed_by_y) == ["The key opens the cellar."]
    assert contents([shared, ys_own], witnessed_by_y) == [
        "The key opens the cellar.",
        "Y hid the gold in the cellar.",
    ]
    assert contents([shared], [*witnessed_by_x, "a cellar"]) == []


def test_keys_given_as_one_text_are_split_on_commas_but_a_regex_is_not() -> None:
    doc = world_info()
    doc["entries"]["0"]["key"] = "harbour, docks"
    doc["entries"]["1"]["key"] = "/a{1,3}/"
    wi = read_world_info(json.dumps(doc))
    assert wi.entries[0].keys == ("harbour", "docks")
    assert wi.entries[1].keys == ("/a{1,3}/",)


def test_recursion_scans_everything_activated_so_far() -> None:
    lore = book(
        entry("start", "the north gate"),
        entry("gate", "the old tower"),
        entry("north", "Needs both.", secondary_keys=("tower",), selective=True),
        recursive_scanning=True,
    )
    assert contents([lore], ["start"]) == ["the north gate", "the old tower", "Needs both."]


# --- the other format ------------------------------------------------------

SCENES = [
    ["To the harbour!"],
    ["The Baron sleeps."],
    ["nothing at all"],
    ["Guild business", "at the harbour"],
]


def test_world_info_goes_to_v3_and_back_unchanged() -> None:
    original = world_info()
    original["entries"]["1"].update(keysecondary=["Baron"], selectiveLogic=3, caseSensitive=True)
    wi = read_world_info(json.dumps(original))
    v3_doc = lorebook_v3_json(wi)
    assert v3_doc["spec"] == "lorebook_v3"
    entry = v3_doc["data"]["entries"][1]
    assert entry["keys"] == ["Guild"] and entry["insertion_order"] == 50
    assert entry["extensions"]["selectiveLogic"] == 3
    assert entry["case_sensitive"] is True
    v3 = read_lorebook_v3(json.dumps(v3_doc))
    assert world_info_json(v3) == original
    for scene in SCENES:
        assert contents([v3], scene) == contents([wi], scene)


def test_a_cards_book_goes_to_world_info_and_activates_the_same() -> None:
    card = read_card_json(json.dumps(v3_card()))
    assert card.book is not None
    assert lorebook_v3_json(card.book) == {"spec": "lorebook_v3", "data": card.book.original()}
    wi_doc = world_info_json(card.book)
    assert [e["key"] for e in wi_doc["entries"].values()] == [
        ["brass key"],
        ["/cell(ar|ars)\\b/i"],
        ["storm"],
    ]
    wi = read_world_info(json.dumps(wi_doc))
    for scene in (["a brass key"], ["the Cellars"], ["a storm"], ["calm"]):
        as_card = Lorebook("world_info", "x", card.book.entries, recursive_scanning=True)
        assert contents([wi], scene) == contents([as_card], scene)


def test_a_v3_book_goes_to_world_info_and_back_unchanged() -> None:
    original = lorebook_v3()
    v3 = read_lorebook_v3(json.dumps(original))
    wi = read_world_info(json.dumps(world_info_json(v3)))
    assert lorebook_v3_json(wi)["data"] == original["data"]
    for scene in (["brass key"], ["the cellars"], ["nothing"]):
        same = Lorebook("world_info", "x", v3.entries, recursive_scanning=True)
        assert contents([wi], scene) == contents([same], scene)


@pytest.mark.parametrize(
    "key", ["/(a+)+$/", "/(\\w+\\s?)*!/", "/(x{2,})+y/", "/" + "a" * 1001 + "/"]
)
def test_a_regex_that_could_run_for_ever_is_reported_and_never_matches(key: str) -> None:
    doc = world_info()
    doc["entries"]["0"]["key"] = [key]
    wi = read_world_info(json.dumps(doc))
    assert [p.key for p in wi.problems] == [key]
    lone = Lorebook("world_info", "x", (wi.entries[0],))
    assert contents([lone], ["a" * 40 + "b", "word " * 30]) == []


def test_ordinary_regex_keys_are_not_reported() -> None:
    doc = world_info()
    doc["entries"]["0"]["key"] = ["/(ab)+c/", "/cell(ar|ars)\\b/i", "/a+b+/"]
    assert read_world_info(json.dumps(doc)).problems == ()
