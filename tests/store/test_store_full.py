"""A full disk: the store refuses with StorageFull, writes nothing, holds a beat's end, recovers.

``PRAGMA max_page_count`` makes a real database file run out of room at a
chosen size: SQLite then answers SQLITE_FULL exactly as on a full disk.
"""

from __future__ import annotations

import errno
from pathlib import Path

import apsw
import pytest
from storeworld import add_bot, add_chat, open_store, said

from protocol import BeatComplete, ChatMessage, TurnSettled, UserTurn
from protocol import events as ev
from store import AppendResult, Render, StorageFull, Store
from store import open_store as open_async_store
from store._tx import space_errors

LONG = " ".join(f"word{n}" for n in range(4000))  # ~35 KB: needs pages the file lacks


def fill_up(store: Store) -> None:
    """No page beyond those the file has now (SQLite keeps the larger of the two)."""
    store.conn.execute("PRAGMA max_page_count = 1")


def make_room(store: Store) -> None:
    """Space is freed."""
    store.conn.execute("PRAGMA max_page_count = 1073741823")


def integrity(store: Store) -> list[tuple[str, ...]]:
    return [tuple(row) for row in store.conn.execute("PRAGMA integrity_check")]


def open_beat(store: Store) -> tuple[str, int, int]:
    """A chat with a user turn and a beat streaming; returns (chat, user turn, beat) ids."""
    mira = add_bot(store, "Mira")
    chat_id, _ = add_chat(store, mira)
    (user_id,) = store.append(ev.UserTurn(chat_id, "Hello", said("Hello"))).ids
    (beat_id,) = store.append(ev.AssistantTurnStarted(chat_id, mira, user_id)).ids
    store.checkpoint_beat(beat_id, chat_id, "word0")
    return chat_id, user_id, beat_id


def beat_end(chat_id: str, user_id: int, beat_id: int) -> tuple[ev.AssistantTurn, Render]:
    end = ev.AssistantTurn(
        chat_id, "mira", user_id, beat_id, LONG, truncated=True, error="storage_full"
    )

    def render(ids: tuple[int, ...]) -> list[ChatMessage]:
        return [BeatComplete(chat_id, beat_id, ids[0], "mira", LONG, True, None, "storage_full")]

    return end, render


def test_a_write_that_does_not_fit_raises_storage_full_and_writes_nothing(
    tmp_path: Path,
) -> None:
    store = open_store(tmp_path)
    chat_id, user_id, beat_id = open_beat(store)
    events, seq = store.event_count(), store.last_seq(chat_id)
    fill_up(store)
    with pytest.raises(StorageFull, match=r"disk .* is full"):
        store.append(
            ev.AssistantTurn(chat_id, "mira", user_id, beat_id, LONG),
            render=lambda ids: [UserTurn(chat_id, ids[0], LONG, said(LONG))],
        )
    assert (store.event_count(), store.last_seq(chat_id)) == (events, seq)
    assert store.open_beats(chat_id) == [beat_id]
    make_room(store)
    store.append(ev.AssistantTurn(chat_id, "mira", user_id, beat_id, LONG))
    assert store.timeline(chat_id)[-1].text == LONG
    assert integrity(store) == [("ok",)]
    store.close()


def test_a_held_beat_end_is_written_first_by_the_next_write_that_fits(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    chat_id, user_id, beat_id = open_beat(store)
    seq = store.last_seq(chat_id)
    fill_up(store)
    end, render = beat_end(chat_id, user_id, beat_id)
    assert store.hold_beat_end(end, render) is False
    assert store.held_beats() == [beat_id]
    # Every later write is refused while the held end does not fit: no message of
    # the chat may take a seq before the beat's end does.
    with pytest.raises(StorageFull):
        store.record([TurnSettled(chat_id, user_id)])
    with pytest.raises(StorageFull):
        store.append(ev.UserTurn(chat_id, "Still there?", said("Still there?")))
    assert store.landed() == [] and store.last_seq(chat_id) == seq

    make_room(store)
    (settled,) = store.record([TurnSettled(chat_id, user_id)])
    [(landed_beat, result)] = store.landed()
    assert landed_beat == beat_id and store.held_beats() == []
    (complete,) = result.messages
    assert isinstance(complete, BeatComplete) and complete.seq == seq + 1
    assert complete.event_id == result.ids[0] and complete.text == LONG
    assert isinstance(settled, TurnSettled) and settled.seq == seq + 2
    assert store.timeline(chat_id)[-1].text == LONG
    assert store.open_beats(chat_id) == []
    assert integrity(store) == [("ok",)]
    store.close()


def test_a_held_end_that_fits_at_once_is_written_at_once(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    chat_id, user_id, beat_id = open_beat(store)
    end, render = beat_end(chat_id, user_id, beat_id)
    assert store.hold_beat_end(end, render) is True
    [(landed_beat, _)] = store.landed()
    assert landed_beat == beat_id and store.open_beats(chat_id) == []
    store.close()


def test_a_restart_before_space_returns_recovers_the_beat(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    chat_id, user_id, beat_id = open_beat(store)
    fill_up(store)
    end, render = beat_end(chat_id, user_id, beat_id)
    store.hold_beat_end(end, render)
    store.close()  # still full: the end stays unwritten

    reopened = open_store(tmp_path)  # the size limit was this connection's: room again
    assert reopened.open_beats(chat_id) == []
    last = reopened.timeline(chat_id)[-1]
    assert last.truncated and last.speaker_id == "mira"
    # The whole text if its checkpoint still fitted when the end was held, else the
    # last checkpoint that did: never less.
    assert last.text in (LONG, "word0")
    assert integrity(reopened) == [("ok",)]
    reopened.close()


def test_no_space_left_on_the_device_is_storage_full_too() -> None:
    with pytest.raises(StorageFull), space_errors():
        raise OSError(errno.ENOSPC, "No space left on device")
    with pytest.raises(PermissionError), space_errors():
        raise PermissionError(errno.EACCES, "Permission denied")
    with pytest.raises(StorageFull), space_errors():
        raise apsw.FullError("database or disk is full")


async def test_the_trio_side_is_told_when_a_held_end_lands(tmp_path: Path) -> None:
    async with open_async_store(tmp_path / "troupe.db", data_dir=tmp_path) as astore:
        chat_id, user_id, beat_id = await astore.run(open_beat)
        await astore.run(fill_up)
        end, render = beat_end(chat_id, user_id, beat_id)
        told: list[AppendResult] = []
        astore.hold_beat_end(end, render, told.append)
        with pytest.raises(StorageFull):
            await astore.run(Store.record, [TurnSettled(chat_id, user_id)])
        assert told == []
        await astore.run(make_room)
        (settled,) = await astore.run(Store.record, [TurnSettled(chat_id, user_id)])
        # Told before the caller of the write that landed it resumes, so seqs stay in order.
        [result] = told
        (complete,) = result.messages
        assert isinstance(complete, BeatComplete) and isinstance(settled, TurnSettled)
        assert complete.seq == settled.seq - 1
        assert await astore.run(integrity) == [("ok",)]
