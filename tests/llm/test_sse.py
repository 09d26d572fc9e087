"""The event splitter the openai backend reads streams with: the event-stream format,
whatever the pieces the bytes arrive in."""

from __future__ import annotations

from llm._sse import EventSplitter

STREAM = (
    b": a comment\n"
    b"data: one\n\n"
    b"event: ping\n\n"
    b"data:two\ndata: lines\n\n"
    b"id: 7\ndata: caf\xc3\xa9 \xe2\x80\x94 done\n\n"
    b"data\n\n"
    b"data: left unfinished"
)
EVENTS = ["one", "two\nlines", "café — done", ""]


def split(stream: bytes, size: int) -> list[str]:
    splitter = EventSplitter()
    events: list[str] = []
    for start in range(0, len(stream), size):
        events += splitter.feed(stream[start : start + size])
    return events + splitter.close()


def test_events_whatever_the_pieces() -> None:
    for size in range(1, len(STREAM) + 1):
        assert split(STREAM, size) == EVENTS, size


def test_every_line_end() -> None:
    for end in (b"\r\n", b"\r"):
        stream = STREAM.replace(b"\n", end)
        for size in range(1, len(stream) + 1):
            assert split(stream, size) == EVENTS, (end, size)


def test_a_last_cr_ends_its_line_at_the_end_of_the_stream() -> None:
    assert split(b"data: a\r\r", 100) == ["a"]
    assert split(b"data: a\r", 100) == []


def test_one_read_one_event() -> None:
    splitter = EventSplitter()
    assert splitter.feed(b'data: {"x": 1}\n\n') == ['{"x": 1}']
    assert splitter.feed(b"data: [DONE]\n\n") == ["[DONE]"]
    assert splitter.close() == []
