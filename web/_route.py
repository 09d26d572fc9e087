"""Commands run on the node that owns their chat: the gateway's side of it.

On one machine nothing here is used. In a cluster (docs/scale-out.md) every
node's gateway takes any client, and each chat is written by one node, its
owner. A command about a chat is handed to a :class:`Router`, which runs it
here when this node owns the chat and otherwise sends it to the owner; the
owner runs it with :func:`run_forwarded`, as the origin's connection would
have, and sends back its answer and the connection's seat in that chat.

Reading a chat stays on the client's own node: ``open_chat`` and
``close_chat`` (the watch follows the chat there) and ``load_older`` (a read
of the log).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, cast

import attrs

import protocol as p

from ._commands import Answer, run_command

if TYPE_CHECKING:
    from actors import Engine

    from ._connection import Connection

STAYS_HERE: frozenset[type[object]] = frozenset({p.OpenChat, p.CloseChat, p.LoadOlder})
"""Chat commands every node answers itself."""


def chat_of(message: object) -> str | None:
    """The chat whose owner must run ``message``; None when any node may."""
    if type(message) in STAYS_HERE:
        return None
    chat_id = getattr(message, "chat_id", None)
    return chat_id if isinstance(chat_id, str) else None


@attrs.frozen
class Routed:
    """The owner's answer to a command, and the connection's seat in the chat after it."""

    answer: Answer
    seat: str


class Router(Protocol):
    """Decides where a command about a chat runs."""

    async def route(self, chat_id: str, seat: str, envelope: p.Envelope) -> Routed | None:
        """None: run it here. Otherwise the owner ran it: its answer.

        Raises :class:`protocol.ProtocolError` for the owner's refusal, or
        ``unavailable`` when the chat's owner cannot be reached.
        """


@attrs.define
class _Forwarded:
    """Stands in for the origin's connection while the owner runs its command."""

    engine: Engine
    seats: dict[str, str]

    def seat(self, chat_id: str) -> str:
        return self.seats.get(chat_id, p.YOU_ID)

    async def open_chat(self, *_: Any) -> None:
        raise AssertionError("open_chat is never forwarded")

    async def close_chat(self, *_: Any) -> p.Ok:
        raise AssertionError("close_chat is never forwarded")

    def gateway_statistics(self) -> Any:
        raise AssertionError("get_statistics is never forwarded")


async def run_forwarded(engine: Engine, envelope: p.Envelope, seat: str) -> Routed:
    """Run a command another node forwarded, as the origin's connection would have."""
    chat_id = chat_of(envelope.message)
    if chat_id is None:
        raise p.ProtocolError("bad_message", f"{envelope.type} is not forwarded", envelope.id)
    stand_in = _Forwarded(engine, {chat_id: seat})
    # Through run_command: a command_id makes the owner run it once, as a node of its own would.
    answer = await run_command(cast("Connection", stand_in), envelope)
    return Routed(answer, stand_in.seat(chat_id))
