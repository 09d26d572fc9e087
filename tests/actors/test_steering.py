"""Steering through the engine: greetings from a card, lorebooks per chat, the author's note,
card edits; bad input writes nothing."""

from __future__ import annotations

import json

import pytest
import trio

import story
from actors import Engine
from protocol import AuthorNote, AuthorNoteChanged, ChatLorebooks, ProtocolError
from store import Store, import_card, import_lorebook

CARD = {
    "spec": "chara_card_v3",
    "spec_version": "3.0",
    "data": {
        "name": "Tobin",
        "description": "{{char}} hauls crates.",
        "personality": "Loud.",
        "scenario": "",
        "first_mes": "Crates, {{user}}.",
        "mes_example": "",
        "alternate_greetings": ["Back again, {{user}}?"],
        "group_only_greetings": ["Everyone, grab a rope."],
        "creator_notes": "",
        "system_prompt": "",
        "post_history_instructions": "",
        "tags": [],
        "creator": "",
        "character_version": "",
        "extensions": {"unknown_tool": {"keep": [1, 2]}},
        "x_unknown": "kept",
    },
}


async def card_bot(engine: Engine) -> str:
    imported = story.read_import(json.dumps(CARD).encode())
    assert isinstance(imported, story.ImportedCard)
    return await engine.store.run(lambda s: import_card(s, imported))


async def lorebook(engine: Engine) -> str:
    book = story.read_world_info(json.dumps({"entries": {"0": {"key": ["k"], "content": "c"}}}))
    return await engine.store.run(lambda s: import_lorebook(s, book, "Harbour"))


async def refused(engine: Engine, code: str, call: object) -> None:
    before = await engine.store.run(Store.event_count)
    with pytest.raises(ProtocolError) as caught:
        await call  # type: ignore[misc]
    assert caught.value.code == code
    assert await engine.store.run(Store.event_count) == before


async def test_a_card_host_opens_with_the_greeting_asked_for(engine: Engine) -> None:
    await engine.set_you("Ana", "A sailor.")
    tobin = await card_bot(engine)
    mira = await engine.create_bot("Mira", "barkeep", "Rain's coming in.")
    first = await engine.chat_state((await engine.create_chat(tobin)).id)
    assert [t.text for t in first.timeline] == ["Crates, Ana."]
    second = await engine.chat_state((await engine.create_chat(tobin, greeting=1)).id)
    assert [t.text for t in second.timeline] == ["Back again, Ana?"]
    group = await engine.create_chat(None, cast=(tobin, mira.id), greeting=2)
    assert [t.text for t in (await engine.chat_state(group.id)).timeline] == [
        "Everyone, grab a rope."
    ]


async def test_a_greeting_out_of_range_is_invalid_and_writes_nothing(engine: Engine) -> None:
    tobin = await card_bot(engine)
    mira = await engine.create_bot("Mira", "barkeep", "")
    await refused(engine, "invalid", engine.create_chat(tobin, greeting=2))  # group-only: alone
    await refused(engine, "invalid", engine.create_chat(None, cast=(tobin, mira.id), greeting=3))
    await refused(engine, "invalid", engine.create_chat(mira.id, greeting=1))  # no card at all
    assert await engine.list_chats() == ()
    assert (await engine.create_chat(tobin)).id == "c1"


async def test_lorebooks_attach_and_the_watchers_are_told(engine: Engine) -> None:
    mira = await engine.create_bot("Mira", "barkeep", "")
    chat = await engine.create_chat(mira.id)
    book = await lorebook(engine)
    async with engine.watch(chat.id) as messages:
        first = await messages.__anext__()
        assert first.lorebooks == ()  # type: ignore[union-attr]
        assert await engine.attach_lorebook(chat.id, book) == (book,)
        with trio.fail_after(5):
            told = await messages.__anext__()
        assert isinstance(told, ChatLorebooks) and told.lorebooks == (book,)
        await engine.set_author_note(chat.id, "Keep it tense.", 2)
        with trio.fail_after(5):
            note = await messages.__anext__()
        assert isinstance(note, AuthorNoteChanged) and (note.text, note.depth) == (
            "Keep it tense.",
            2,
        )
    state = await engine.chat_state(chat.id)
    assert state.lorebooks == (book,)
    assert state.author_note == AuthorNote("Keep it tense.", 2)
    assert await engine.detach_lorebook(chat.id, book) == ()


async def test_bad_steering_is_refused_and_writes_nothing(engine: Engine) -> None:
    mira = await engine.create_bot("Mira", "barkeep", "")
    chat = await engine.create_chat(mira.id)
    book = await lorebook(engine)
    await refused(engine, "not_found", engine.attach_lorebook("c9", book))
    await refused(engine, "not_found", engine.attach_lorebook(chat.id, "lore-nothing"))
    await refused(engine, "invalid", engine.detach_lorebook(chat.id, book))
    await refused(engine, "invalid", engine.set_author_note(chat.id, "x", -1))
    await refused(engine, "invalid", engine.set_author_note(chat.id, "x", 101))
    await refused(engine, "invalid", engine.set_author_note(chat.id, "x" * 4001, 4))
    await refused(engine, "not_found", engine.set_author_note("c9", "x", 4))


async def test_a_card_edit_keeps_every_other_field(engine: Engine) -> None:
    tobin = await card_bot(engine)
    bot = await engine.update_card(tobin, {"description": "Tobin rows boats.", "first_mes": "Oi."})
    assert (bot.persona, bot.greeting) == ("Tobin rows boats.", "Oi.")
    card = await engine.store.run(Store.card_of, tobin)
    assert card is not None
    doc = card.original()
    assert doc["data"]["description"] == "Tobin rows boats."
    assert doc["data"]["extensions"] == {"unknown_tool": {"keep": [1, 2]}}
    assert doc["data"]["x_unknown"] == "kept"
    assert {k: v for k, v in doc["data"].items() if k not in ("description", "first_mes")} == {
        k: v for k, v in CARD["data"].items() if k not in ("description", "first_mes")
    }
    mira = await engine.create_bot("Mira", "barkeep", "")
    await refused(engine, "invalid", engine.update_card(mira.id, {"description": "x"}))
    await refused(engine, "invalid", engine.update_card(tobin, {"tags": "x"}))
    await refused(engine, "not_found", engine.update_card("nobody", {"description": "x"}))
