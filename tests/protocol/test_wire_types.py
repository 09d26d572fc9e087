"""Wire types mean one thing each; older names still read, and the wire stays as it was."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import protocol as p

SESSION = Path(__file__).resolve().parents[2] / "docs" / "examples" / "session.txt"
MEMORY = p.Memory(8, "mira", "c1", "I answered.", 3, True)


def test_the_statistics_command_has_its_own_name_and_the_old_one_still_reads() -> None:
    new = p.decode_client('{"type": "get_statistics", "id": "s"}')
    old = p.decode_client('{"type": "statistics", "id": "s"}')
    assert new == old == p.Envelope(p.GetStatistics(), "s")
    assert new.type == "get_statistics"
    assert json.loads(p.encode_client(p.GetStatistics()))["type"] == "get_statistics"
    assert p.SERVER_TYPES[p.Statistics] == "statistics"  # the answer keeps its name


def test_client_names_mean_one_message_each() -> None:
    assert len(set(p.CLIENT_TYPES.values())) == len(p.CLIENT_TYPES)
    assert not set(p.CLIENT_ALIASES) & set(p.CLIENT_TYPES)


def test_server_names_mean_one_shape_each() -> None:
    assert len(set(p.SERVER_NAMES.values())) == len(p.SERVER_NAMES)
    assert set(p.SERVER_NAMES.values()) == set(p.SERVER_TYPES)
    assert p.SERVER_NAMES["memory"] is p.MemoryReply
    assert p.SERVER_NAMES["memory_note"] is p.MemoryNote


def test_the_server_still_sends_memory_for_both_shapes() -> None:
    # Clients match on "memory"; the chat message's own name is read, not sent.
    note = p.encode_server(p.MemoryNote("c1", MEMORY, seq=7))
    reply = p.encode_server(p.MemoryReply(MEMORY), "9", direct=True)
    assert json.loads(note)["type"] == json.loads(reply)["type"] == "memory"
    assert p.decode_server(note).message == p.MemoryNote("c1", MEMORY, seq=7)
    assert p.decode_server(reply) == p.ServerFrame(p.MemoryReply(MEMORY), "9", direct=True)
    renamed = json.dumps({**json.loads(note), "type": "memory_note"})
    assert p.decode_server(renamed).message == p.MemoryNote("c1", MEMORY, seq=7)


@pytest.mark.parametrize(
    "frame", ["nope", "[]", '{"type": "dance"}', '{"type": "token", "chat_id": "c1"}']
)
def test_a_frame_a_client_cannot_read_says_why(frame: str) -> None:
    with pytest.raises(p.ServerFrameError):
        p.decode_server(frame)


def captured() -> list[str]:
    return [
        line.removeprefix("<<< ")
        for line in SESSION.read_text(encoding="utf-8").splitlines()
        if line.startswith("<<< ")
    ]


def test_the_captured_frames_are_sent_byte_for_byte_as_they_were() -> None:
    frames = captured()
    assert len(frames) > 20
    for frame in frames:
        read = p.decode_server(frame)
        again = p.encode_server(read.message, read.reply_to, direct=read.direct)
        assert json.loads(again) == json.loads(frame)
        assert again == json.dumps(json.loads(frame), ensure_ascii=False)


def test_the_captured_commands_read_as_they_were() -> None:
    sent = [
        line.removeprefix(">>> ")
        for line in SESSION.read_text(encoding="utf-8").splitlines()
        if line.startswith(">>> ")
    ]
    for frame in sent:
        data = json.loads(frame)
        if data["type"] not in p.CLIENT_TYPES:
            continue  # a frame the session sends to show a refusal
        envelope = p.decode_client(frame)
        again = p.encode_client(envelope.message, envelope.id)
        assert p.decode_client(again) == envelope
        assert json.loads(again)["type"] == data["type"]
