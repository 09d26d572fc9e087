"""Imported cards, avatars, lorebooks and chats in the real store, and their rebuild."""

from __future__ import annotations

import json

import pytest
from storeworld import Where, add_bot, dump_projections, log_count, open_store

from store import Invalid, Store, import_card, import_chat, import_lorebook
from story import (
    ImportedCard,
    ImportedChat,
    ImportedLorebook,
    card_v2_json,
    read_import,
    strip_card,
)
from tests.support.card_files import (
    card_chunk,
    jsonl,
    lorebook_v3,
    png,
    st_chat_lines,
    v1_card,
    v2_card,
    world_info,
)


def _card(data: bytes) -> ImportedCard:
    imported = read_import(data)
    assert isinstance(imported, ImportedCard)
    return imported


def test_a_png_card_becomes_a_bot_that_keeps_its_card_and_avatar(store: Store) -> None:
    original = v2_card()
    data = png(card_chunk("chara", original))
    bot_id = import_card(store, _card(data))

    bot = store.get_bot(bot_id)
    assert bot is not None
    assert (bot.name, bot.card, bot.avatar_url) == ("Mira", True, f"/api/bots/{bot_id}/avatar")
    assert bot.persona == original["data"]["description"]
    assert bot.greeting == original["data"]["first_mes"]
    card = store.card_of(bot_id)
    assert card is not None
    assert card_v2_json(card) == original  # every field and unknown key
    assert card.book is not None and len(card.book.entries) == 2
    assert store.avatar_of(bot_id) == (strip_card(data), "image/png")


def test_a_card_without_an_image_has_no_avatar(store: Store) -> None:
    bot_id = import_card(store, _card(json.dumps(v1_card()).encode()))
    bot = store.get_bot(bot_id)
    assert bot is not None and bot.card and bot.avatar_url is None
    assert store.avatar_of(bot_id) is None
    card = store.card_of(bot_id)
    assert card is not None and card.spec == "v1" and card.original() == v1_card()


def test_bots_without_a_card_say_so(store: Store) -> None:
    bot_id = add_bot(store, "Tam")
    bot = store.get_bot(bot_id)
    assert bot is not None and not bot.card and bot.avatar_url is None
    assert store.card_of(bot_id) is None


def test_lorebooks_are_kept_whole_and_listed(store: Store) -> None:
    wi = read_import(json.dumps(world_info()).encode())
    v3 = read_import(json.dumps(lorebook_v3()).encode())
    assert isinstance(wi, ImportedLorebook) and isinstance(v3, ImportedLorebook)
    first = import_lorebook(store, wi.book, "harbour")
    second = import_lorebook(store, v3.book)

    listed = store.list_lorebooks()
    assert [(b.lorebook_id, b.name, b.format, b.entries) for b in listed] == [
        (first, "harbour", "world_info", 4),
        (second, "Lantern lore", "lorebook_v3", 2),
    ]
    book = store.lorebook_of(second)
    assert book is not None and book.original() == lorebook_v3()
    assert store.lorebook_of("nothing") is None
    again = store.lorebook_of(first)
    assert again is not None and again.original() == world_info()


def test_an_invalid_regex_is_listed_as_a_problem(store: Store) -> None:
    doc = world_info()
    doc["entries"]["0"]["key"] = ["/(unclosed/"]
    book = read_import(json.dumps(doc).encode())
    assert isinstance(book, ImportedLorebook)
    lorebook_id = import_lorebook(store, book.book)
    (info,) = store.list_lorebooks()
    assert info.lorebook_id == lorebook_id
    assert len(info.problems) == 1 and "unclosed" in info.problems[0].problem


def test_a_sillytavern_chat_becomes_a_chat_with_the_same_timeline(store: Store) -> None:
    you_bot = add_bot(store, "mira")  # found by name, in any case
    chat = read_import(jsonl(st_chat_lines()))
    assert isinstance(chat, ImportedChat)
    made = import_chat(store, chat.chat)

    assert made.created_bots == ()
    got = store.get_chat(made.chat_id)
    assert got is not None and got.cast == (you_bot,)
    timeline = store.timeline(made.chat_id)
    assert [(t.kind, t.speaker_id, t.text) for t in timeline] == [
        ("assistant", you_bot, "Evening, Ada."),
        ("user", "you", "A brass key, Mira."),
        ("assistant", you_bot, "Second try."),
    ]
    assert timeline[2].user_turn_id == timeline[1].event_id
    found = store.chat_import(made.chat_id)
    assert found is not None
    _, event = found
    assert [json.loads(line) for line in event.lines] == st_chat_lines()[1:]
    assert json.loads(event.header) == st_chat_lines()[0]


def test_a_chat_creates_the_characters_no_bot_is_called(store: Store) -> None:
    lines = st_chat_lines()
    lines.append({"name": "Tam", "is_user": False, "mes": "Me too.", "send_date": ""})
    lines.append({"name": "System", "is_user": False, "is_system": True, "mes": "note"})
    chat = read_import(jsonl(lines))
    assert isinstance(chat, ImportedChat)
    made = import_chat(store, chat.chat)
    assert made.created_bots == ("mira", "tam")
    got = store.get_chat(made.chat_id)
    assert got is not None and got.cast == ("mira", "tam")
    found = store.chat_import(made.chat_id)
    assert found is not None and found[1].skipped == (4,)
    assert len(store.timeline(made.chat_id)) == 4


def test_a_chat_with_too_many_characters_writes_nothing(store: Store) -> None:
    lines = [st_chat_lines()[0]]
    lines += [{"name": f"C{n}", "is_user": False, "mes": "hi"} for n in range(9)]
    chat = read_import(jsonl(lines))
    assert isinstance(chat, ImportedChat)
    before = log_count(store)
    with pytest.raises(Invalid, match="at most 8"):
        import_chat(store, chat.chat)
    assert log_count(store) == before
    assert store.list_bots() == []


def test_rebuild_keeps_cards_avatars_lorebooks_and_imported_chats(place: Where) -> None:
    store = open_store(place)
    try:
        bot_id = import_card(store, _card(png(card_chunk("chara", v2_card()))))
        book = read_import(json.dumps(lorebook_v3()).encode())
        assert isinstance(book, ImportedLorebook)
        import_lorebook(store, book.book)
        chat = read_import(jsonl(st_chat_lines()))
        assert isinstance(chat, ImportedChat)
        import_chat(store, chat.chat)
        before = dump_projections(store)
        avatar = store.avatar_of(bot_id)
        assert before["bot_cards"] and before["lorebooks"]

        store.rebuild()
        assert dump_projections(store) == before
        assert store.avatar_of(bot_id) == avatar  # blobs are not a projection
    finally:
        store.close()

    reopened = open_store(place)
    try:
        assert dump_projections(reopened) == before
        assert reopened.avatar_of(bot_id) == avatar
    finally:
        reopened.close()
