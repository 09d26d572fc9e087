"""Muting, the chat's own ``chat`` message and paging back, on the wire as captured."""

from __future__ import annotations

import json
from pathlib import Path

import attrs
import pytest

import protocol as p

SESSION = Path(__file__).resolve().parents[2] / "docs" / "examples" / "ensemble_session.txt"
CHAT = p.Chat("c1", "T", "mira", "ada", None, "2026-12-02T00:00:00.000+00:00", ("mira", "ada"))


def received() -> list[str]:
    lines = SESSION.read_text(encoding="utf-8").splitlines()
    return [line[4:] for line in lines if line.startswith(("<<< ", "B<< "))]


def test_the_captured_frames_read_and_are_sent_byte_for_byte_as_they_were() -> None:
    frames = received()
    kinds = {json.loads(frame)["type"] for frame in frames}
    assert {"chat", "older_turns", "chat_state", "error"} <= kinds
    for frame in frames:
        read = p.decode_server(frame)
        again = p.encode_server(read.message, read.reply_to, direct=read.direct)
        assert again == json.dumps(json.loads(frame), ensure_ascii=False)


def test_the_chat_s_own_message_has_a_name_of_its_own() -> None:
    note = p.encode_server(p.ChatNote("c1", CHAT, seq=3))
    answer = p.encode_server(p.ChatReply(CHAT), "7", direct=True)
    assert json.loads(note)["type"] == "chat_note"
    assert json.loads(answer)["type"] == "chat"
    assert p.decode_server(note).message == p.ChatNote("c1", CHAT, seq=3)
    assert p.decode_server(answer).message == p.ChatReply(CHAT)


def test_muted_is_sent_even_empty_and_an_older_chat_without_it_reads_back_unchanged() -> None:
    today = attrs.evolve(CHAT, muted=())
    assert json.loads(p.encode_server(p.ChatReply(today), "1", direct=True))["chat"]["muted"] == []
    older = json.loads(p.encode_server(p.ChatReply(CHAT), "1", direct=True))
    assert "muted" not in older["chat"]
    assert p.decode_server(json.dumps(older)).message == p.ChatReply(CHAT)


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"chat_id": "c1", "before_event_id": 0}, "bad_message"),
        ({"chat_id": "c1", "before_event_id": "5"}, "bad_message"),
        ({"chat_id": "c1"}, "bad_message"),
        ({"chat_id": "c1", "before_event_id": 5, "limit": "ten"}, "bad_message"),
    ],
)
def test_load_older_needs_an_event_and_a_whole_limit(fields: dict[str, object], code: str) -> None:
    with pytest.raises(p.ProtocolError) as refused:
        p.decode_client(json.dumps({"type": "load_older", **fields}))
    assert refused.value.code == code


def test_load_older_asks_for_as_many_turns_as_chat_state_carries_by_default() -> None:
    envelope = p.decode_client('{"type": "load_older", "chat_id": "c1", "before_event_id": 9}')
    assert envelope.message == p.LoadOlder("c1", 9, p.LATEST_TURNS)
