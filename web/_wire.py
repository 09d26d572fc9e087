"""Token frames built and encoded once, however many connections watch the chat.

A chat's watchers all forward the same :class:`protocol.Token` objects, and
a token is the one message a streaming chat sends many times a second: its
wire object and its JSON text are made once per token and shared by every
connection that sends it unchanged. A token an outbox merges with another
becomes a plain frame again, encoded when it is sent.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

import protocol as p


class Encoded(dict[str, Any]):
    """A frame that carries its JSON text; nobody may change it once made."""

    __slots__ = ("text",)

    def __init__(self, data: dict[str, Any]) -> None:
        super().__init__(data)
        self.text = json.dumps(data, ensure_ascii=False)


@lru_cache(maxsize=4096)
def token_frame(token: p.Token) -> Encoded:
    """The wire frame of a token, exactly as :func:`protocol.to_wire` makes it, with its text.

    Cached by value: the tokens of all streaming chats, for as long as their
    watchers may still be forwarding them, fit many times over.
    """
    return Encoded(p.to_wire(token))


def encode(frame: dict[str, Any]) -> str:
    """A frame's JSON text, as sent."""
    if type(frame) is Encoded:
        return frame.text
    return json.dumps(frame, ensure_ascii=False)
