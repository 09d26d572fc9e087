"""SillyTavern chats: JSON Lines read and written, swipes and extra kept, a timeline round trip."""

from __future__ import annotations

import json

import pytest

from story import (
    CardError,
    ChatLine,
    build_st_chat,
    chat_transcript,
    read_st_chat,
    write_st_chat,
)
from tests.support.card_files import jsonl, st_chat_lines


def test_a_chat_is_read_with_its_header_and_swipes() -> None:
    chat = read_st_chat(jsonl(st_chat_lines()))
    assert (chat.user_name, chat.character_name) == ("Ada", "Mira")
    assert [(line.name, line.is_user, line.text) for line in chat.lines] == [
        ("Mira", False, "Evening, Ada."),
        ("Ada", True, "A brass key, Mira."),
        ("Mira", False, "Second try."),
    ]
    last = chat.lines[-1]
    assert last.swipes == ("First try.", "Second try.")
    assert last.swipe_id == 1
    assert last.send_date == "1714564920000"
    assert last.extra_object() == {"api": "openai", "model": "x"}


def test_a_chat_read_is_written_back_line_for_line() -> None:
    lines = st_chat_lines()
    out = write_st_chat(read_st_chat(jsonl(lines)))
    assert [json.loads(line) for line in out.decode().splitlines()] == lines


def test_an_exported_timeline_imports_as_the_same_timeline() -> None:
    timeline = [
        ChatLine(
            "Mira",
            False,
            "Evening.",
            "2024-05-01T12:00:00Z",
            extra='{"troupe":{"event_id":1,"present":["mira","you"]}}',
        ),
        ChatLine(
            "Ada", True, "Hello, Mira.", "2024-05-01T12:01:00Z", extra='{"troupe":{"event_id":2}}'
        ),
        ChatLine(
            "Mira",
            False,
            "Better.",
            "2024-05-01T12:02:00Z",
            swipes=("Worse.", "Better."),
            swipe_id=1,
            extra='{"troupe":{"event_id":4,"alternatives":[3,4]}}',
        ),
    ]
    chat = build_st_chat("Ada", "Mira", timeline, create_date="2024-05-01@12h00m00s")
    data = write_st_chat(chat)
    rows = [json.loads(line) for line in data.decode().splitlines()]
    assert rows[0]["user_name"] == "Ada" and rows[0]["character_name"] == "Mira"
    assert set(rows[1]) >= {"name", "is_user", "mes", "send_date"}
    assert "swipes" not in rows[1] and rows[3]["swipes"] == ["Worse.", "Better."]
    assert rows[3]["mes"] == "Better." and rows[3]["swipe_id"] == 1
    assert rows[1]["extra"]["troupe"]["present"] == ["mira", "you"]
    again = read_st_chat(data)
    assert again == chat
    assert again.lines == tuple(timeline)


def test_a_transcript_reads_like_a_play() -> None:
    text = chat_transcript(read_st_chat(jsonl(st_chat_lines())))
    assert text.startswith("# Mira\n\n**Mira:** Evening, Ada.\n\n**Ada:** A brass key, Mira.")


@pytest.mark.parametrize(
    ("data", "where"),
    [
        (jsonl(st_chat_lines())[:-20] + b"\n", "line 4"),
        (jsonl(st_chat_lines()) + b"[1, 2]\n", "line 5"),
        (jsonl([*st_chat_lines(), {"name": "Mira", "mes": 5}]), "line 5"),
        (jsonl([*st_chat_lines(), {"name": "Mira", "mes": "x", "swipes": [1]}]), "line 5"),
        (b"\n\n", "empty"),
    ],
    ids=["cut line", "not an object", "mes not text", "swipes not texts", "empty"],
)
def test_a_broken_line_is_refused_naming_it(data: bytes, where: str) -> None:
    with pytest.raises(CardError) as caught:
        read_st_chat(data)
    assert caught.value.code == "bad_jsonl"
    assert where in caught.value.message


def test_a_line_separator_inside_a_message_does_not_split_the_line() -> None:
    lines = st_chat_lines()
    lines[1]["mes"] = "one\u2028two\u2029three"
    data = "\n".join(json.dumps(line, ensure_ascii=False) for line in lines).encode()
    chat = read_st_chat(data.replace(b"\n", b"\r\n"))
    assert chat.lines[0].text == "one\u2028two\u2029three"
    assert len(chat.lines) == 3
