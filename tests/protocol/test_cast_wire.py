"""Casts and presence on the wire and in the log: additions that older frames and logs survive."""

from __future__ import annotations

import json

import pytest

import protocol as p
from protocol import events as ev


def test_create_chat_reads_a_cast_with_or_without_a_host() -> None:
    frame = json.dumps({"type": "create_chat", "id": "1", "cast": ["mira", "ada", "tobin"]})
    message = p.decode_client(frame).message
    assert isinstance(message, p.CreateChat)
    assert message.cast == ("mira", "ada", "tobin") and message.host_bot_id is None
    old = p.decode_client(json.dumps({"type": "create_chat", "host_bot_id": "mira"})).message
    assert isinstance(old, p.CreateChat) and old.cast is None


def test_a_cast_no_chat_could_hold_is_too_large() -> None:
    frame = json.dumps({"type": "create_chat", "cast": [f"b{n}" for n in range(40)]})
    with pytest.raises(p.ProtocolError) as refused:
        p.decode_client(frame)
    assert refused.value.code == "too_large"


@pytest.mark.parametrize("kind", ["add_to_cast", "remove_from_cast", "enter_scene", "leave_scene"])
def test_the_cast_commands_need_a_chat_and_a_bot(kind: str) -> None:
    envelope = p.decode_client(json.dumps({"type": kind, "chat_id": "c1", "bot_id": "ada"}))
    assert (envelope.message.chat_id, envelope.message.bot_id) == ("c1", "ada")  # type: ignore[union-attr]
    with pytest.raises(p.ProtocolError) as refused:
        p.decode_client(json.dumps({"type": kind, "chat_id": "c1"}))
    assert refused.value.code == "bad_message"


def test_presence_is_a_numbered_chat_message() -> None:
    frame = p.encode_server(p.Presence("c1", "ada", False, seq=4))
    assert json.loads(frame) == {
        "type": "presence",
        "chat_id": "c1",
        "bot_id": "ada",
        "present": False,
        "seq": 4,
    }


def test_an_older_payload_reads_with_nobody_recorded_and_writes_back_unchanged() -> None:
    old = {"chat_id": "c1", "prose": "Hello.", "segments": []}
    event = p.load_event("user_turn", json.dumps(old))
    assert isinstance(event, ev.UserTurn) and event.present is None
    assert json.loads(p.dump_event(event)[1]) == old
    created = p.load_event(
        "chat_created",
        {"chat_id": "c1", "title": "T", "host_bot_id": "mira", "guest_bot_id": "tam"},
    )
    assert isinstance(created, ev.ChatCreated) and created.members == ("mira", "tam")


def test_a_new_payload_keeps_who_was_present() -> None:
    event = ev.UserTurn("c1", "Hello.", (), ("mira", "you"))
    kind, payload = p.dump_event(event)
    assert json.loads(payload)["present"] == ["mira", "you"]
    assert p.load_event(kind, payload) == event
