"""Server-sent events, split from the raw bytes of a response as they arrive.

A streaming model sends one small event per token, and each arrives in a
read of its own: a reader's cost per read is its cost per token. This one
takes the bytes of a read whole and returns the ``data`` of every event they
complete, with no layer of lines or text decoding in between; it follows the
event-stream format (lines end in CR LF, LF or CR; ``data:`` lines of one
event are joined with LF, one space after the colon dropped; comments and
other fields are skipped; an event ends at an empty line, and one the stream
leaves unfinished is dropped). Splitting bytes at line ends is safe for
UTF-8, whose multi-byte characters never contain them.
"""

from __future__ import annotations


class EventSplitter:
    """Feed it a stream's bytes in any pieces; it returns each finished event's ``data``."""

    def __init__(self) -> None:
        self._rest = b""  # an unfinished line (and a CR that may be half of CR LF)
        self._data: list[bytes] = []  # the data lines of the event being read

    def feed(self, piece: bytes) -> list[str]:
        """The data of every event ``piece`` finishes, in order (events without data skipped)."""
        text = self._rest + piece if self._rest else piece
        if b"\r" in text:
            # A CR at the very end may be the first half of CR LF: wait for the next piece.
            held = text.endswith(b"\r")
            if held:
                text = text[:-1]
            text = text.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
            lines = text.split(b"\n")
            self._rest = lines.pop() + (b"\r" if held else b"")
        else:
            lines = text.split(b"\n")
            self._rest = lines.pop()
        return self._lines(lines)

    def close(self) -> list[str]:
        """The stream ended: a last CR ends its line; an event left unfinished is dropped."""
        rest, self._rest = self._rest, b""
        if rest.endswith(b"\r"):
            return self._lines([rest[:-1]])
        return []

    def _lines(self, lines: list[bytes]) -> list[str]:
        events: list[str] = []
        data = self._data
        for line in lines:
            if not line:
                if data:
                    events.append(b"\n".join(data).decode("utf-8", "replace"))
                    data.clear()
            elif line.startswith(b"data:"):
                data.append(line[6:] if line.startswith(b"data: ") else line[5:])
            elif line == b"data":
                data.append(b"")
        return events
