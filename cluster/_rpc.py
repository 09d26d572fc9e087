"""Requests between nodes over pub/sub: their wire form, and the routing of answers.

A request is published on ``troupe:node:{node_id}``; its answer comes back
on ``troupe:reply:{sender}``. Both are plain bytes, read and written here
by pure functions:

- request: ``Q``, a 16-byte id, the sender's node id (2-byte length, UTF-8),
  then the payload;
- answer: ``A`` (the handler's result) or ``F`` (the text of what it
  raised), the request's id, then the payload.
"""

from __future__ import annotations

import struct
from collections.abc import Awaitable, Callable

import attrs
import trio

from ._fanout import Gap

NODE_CHANNEL = "troupe:node:"
"""Prefix of the channel a node receives requests on; the node id follows."""
REPLY_CHANNEL = "troupe:reply:"
"""Prefix of the channel a node receives answers to its requests on."""

Handler = Callable[[bytes], Awaitable[bytes]]
"""What ``Bus.serve`` calls for each request addressed to this node."""

ID_SIZE = 16  # the bytes of a uuid4
_REQUEST = b"Q"
_ANSWER = b"A"
_FAILURE = b"F"
_HEAD = 1 + ID_SIZE + 2


def node_channel(node_id: str) -> bytes:
    return (NODE_CHANNEL + node_id).encode()


def reply_channel(node_id: str) -> bytes:
    return (REPLY_CHANNEL + node_id).encode()


def encode_request(request_id: bytes, reply_to: str, payload: bytes) -> bytes:
    """A request frame: its id, the node to answer, the payload."""
    sender = reply_to.encode()
    return b"".join((_REQUEST, request_id, struct.pack(">H", len(sender)), sender, payload))


def decode_request(frame: bytes) -> tuple[bytes, str, bytes]:
    """``(request_id, reply_to, payload)``; ValueError when the frame is not a request."""
    if len(frame) < _HEAD or frame[:1] != _REQUEST:
        raise ValueError("not a request frame")
    (size,) = struct.unpack(">H", frame[1 + ID_SIZE : _HEAD])
    if len(frame) < _HEAD + size:
        raise ValueError("request frame cut short")
    sender = frame[_HEAD : _HEAD + size].decode()  # UnicodeDecodeError is a ValueError
    return frame[1 : 1 + ID_SIZE], sender, frame[_HEAD + size :]


def encode_answer(request_id: bytes, ok: bool, payload: bytes) -> bytes:
    """An answer frame: the handler's result (``ok``) or the text of what it raised."""
    return (_ANSWER if ok else _FAILURE) + request_id + payload


def decode_answer(frame: bytes) -> tuple[bytes, bool, bytes]:
    """``(request_id, ok, payload)``; ValueError when the frame is not an answer."""
    if len(frame) < 1 + ID_SIZE or frame[:1] not in (_ANSWER, _FAILURE):
        raise ValueError("not an answer frame")
    return frame[1 : 1 + ID_SIZE], frame[:1] == _ANSWER, frame[1 + ID_SIZE :]


@attrs.define(eq=False)
class Waiting:
    """A request waiting for its answer."""

    answered: trio.Event = attrs.field(factory=trio.Event)
    ok: bool = False
    payload: bytes = b""


class Replies:
    """The sink of a node's reply channel: hands each answer to the request waiting for it."""

    def __init__(self) -> None:
        self.waiting: dict[bytes, Waiting] = {}
        self.malformed = 0

    def _deliver(self, item: bytes | Gap) -> bool:
        if isinstance(item, Gap):
            return False  # a lost answer is its request's timeout to notice
        try:
            request_id, ok, payload = decode_answer(item)
        except ValueError:
            self.malformed += 1
            return False
        waiting = self.waiting.get(request_id)
        if waiting is not None and not waiting.answered.is_set():
            waiting.ok, waiting.payload = ok, payload
            waiting.answered.set()
        return False


__all__ = [
    "ID_SIZE",
    "NODE_CHANNEL",
    "REPLY_CHANNEL",
    "Handler",
    "Replies",
    "Waiting",
    "decode_answer",
    "decode_request",
    "encode_answer",
    "encode_request",
    "node_channel",
    "reply_channel",
]
