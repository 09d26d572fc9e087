"""Steering a chat: the lorebooks attached to it and its author's note, from the log alone."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from storeworld import dump_projections, open_store, said

from protocol import AuthorNote
from protocol import events as ev
from store import Invalid, NotFound, Store, attach_lorebooks, import_lorebook, set_author_note
from story import read_world_info

BOOK = {"entries": {"0": {"uid": 0, "key": ["marigold"], "content": "The smugglers' password."}}}


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = open_store(tmp_path)
    s.append(ev.BotCreated("mira", "Mira", ""))
    s.append(ev.ChatCreated("c1", "Inn", "mira"))
    s.append(ev.ChatCreated("c2", "Docks", "mira"))
    return s


def lorebook(s: Store, name: str = "Harbour") -> str:
    return import_lorebook(s, read_world_info(json.dumps({**BOOK, "name": name})), name)


def refused(s: Store, event: ev.Event, error: type[Exception]) -> None:
    before = dump_projections(s)
    count = s.event_count()
    with pytest.raises(error):
        s.append(event)
    assert s.event_count() == count, "a refused event writes nothing"
    assert dump_projections(s) == before


def test_books_attach_in_order_per_chat_and_detach(store: Store) -> None:
    first, second = lorebook(store, "Harbour"), lorebook(store, "Kingdom")
    store.append(ev.LorebookAttached("c1", second), ev.LorebookAttached("c1", first))
    store.append(ev.LorebookAttached("c2", first))
    assert store.chat_lorebooks("c1") == [second, first]
    assert store.chat_lorebooks("c2") == [first]
    store.append(ev.LorebookDetached("c1", second))
    assert store.chat_lorebooks("c1") == [first]


def test_attaching_refuses_what_cannot_be(store: Store) -> None:
    book = lorebook(store)
    refused(store, ev.LorebookAttached("c9", book), NotFound)
    refused(store, ev.LorebookAttached("c1", "no-such-book"), NotFound)
    refused(store, ev.LorebookDetached("c1", book), Invalid)
    store.append(ev.LorebookAttached("c1", book))
    refused(store, ev.LorebookAttached("c1", book), Invalid)


def test_the_author_note_is_set_replaced_and_removed(store: Store) -> None:
    assert store.author_note("c1") is None
    store.append(ev.AuthorNoteSet("c1", "Keep it tense.", 2))
    store.append(ev.AuthorNoteSet("c1", "Keep it quiet.", 0))
    assert store.author_note("c1") == AuthorNote("Keep it quiet.", 0)
    assert store.author_note("c2") is None
    store.append(ev.AuthorNoteSet("c1", "  ", 4))
    assert store.author_note("c1") is None


def test_a_bad_author_note_writes_nothing(store: Store) -> None:
    refused(store, ev.AuthorNoteSet("c9", "x", 1), NotFound)
    refused(store, ev.AuthorNoteSet("c1", "x", -1), Invalid)
    refused(store, ev.AuthorNoteSet("c1", "x", 101), Invalid)
    refused(store, ev.AuthorNoteSet("c1", "x" * 4001, 1), Invalid)


def test_rewind_and_rebuild_give_back_what_the_log_says(store: Store) -> None:
    book = lorebook(store)
    store.append(ev.AuthorNoteSet("c1", "Before.", 3), ev.LorebookAttached("c1", book))
    mark = store.append(ev.UserTurn("c1", "hello", said("hello"))).ids[0]
    store.append(ev.AuthorNoteSet("c1", "After.", 1), ev.LorebookDetached("c1", book))
    built = dump_projections(store)
    store.rebuild()
    assert dump_projections(store) == built
    store.rewind("c1", mark)
    assert store.author_note("c1") == AuthorNote("Before.", 3)
    assert store.chat_lorebooks("c1") == [book]


def test_the_writes_tell_the_chat(store: Store) -> None:
    book = lorebook(store)
    told = attach_lorebooks(store, ev.LorebookAttached("c1", book)).messages
    assert [type(m).__name__ for m in told] == ["ChatLorebooks"]
    assert told[0].lorebooks == (book,)  # type: ignore[union-attr]
    note = set_author_note(store, ev.AuthorNoteSet("c1", "Rain.", 2)).messages
    assert note[0].seq == told[0].seq + 1
    assert (note[0].text, note[0].depth) == ("Rain.", 2)  # type: ignore[union-attr]
