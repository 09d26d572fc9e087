"""Commands about a chat, run by the chat's owner wherever the client is.

The client's node encodes the command again (its ``id`` and ``command_id``
with it), adds the connection's seat in the chat, and sends it to the owner
over the bus; the owner runs it with ``web.run_forwarded`` and answers with
the command's answer (the very wire message its own client would get) or
its refusal. A command the owner refuses is refused for the client the same
way. When the chat has no owner right now (its shard is moving, or its owner
died and its lease has not run out yet) or the owner does not answer in
time, the client gets ``unavailable``: nothing was written on its behalf
that it cannot safely send again with the same ``command_id``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import attrs
import trio

import protocol as p
from actors import Engine
from web import Routed, chat_of, run_forwarded

from ._bus import Bus, NodeUnreachable

log = logging.getLogger("troupe.cluster.routing")

FORWARD_TIMEOUT = 30.0
"""Seconds a forwarded command may take on its owner (a ``rewind`` replays a chat)."""


def _unavailable(chat_id: str, why: str, reply_to: str | None) -> p.ProtocolError:
    return p.ProtocolError(
        "unavailable",
        f"chat {chat_id} cannot be written right now ({why}); send it again",
        reply_to,
    )


class ClusterRouter:
    """``web.Router`` for a node: run here when this node owns the chat, else forward."""

    def __init__(
        self,
        me: str,
        bus: Bus,
        owner_of: Callable[[str], str | None],
        writable: Callable[[str], bool],
        *,
        timeout: float = FORWARD_TIMEOUT,
    ) -> None:
        self.me = me
        self._bus = bus
        self._owner_of = owner_of
        self._writable = writable
        self._timeout = timeout
        self.forwarded = 0
        self.served = 0
        self.unavailable = 0

    async def route(self, chat_id: str, seat: str, envelope: p.Envelope) -> Routed | None:
        owner = self._owner_of(chat_id)
        if owner == self.me:
            if self._writable(chat_id):
                return None
            self.unavailable += 1
            raise _unavailable(chat_id, "this node is taking it over", envelope.id)
        if owner is None:
            self.unavailable += 1
            raise _unavailable(chat_id, "its node is moving", envelope.id)
        request = json.dumps({"frame": encode_envelope(envelope), "seat": seat}).encode()
        try:
            reply = await self._bus.request(owner, request, self._timeout)
        except NodeUnreachable:
            self.unavailable += 1
            raise _unavailable(chat_id, "its node does not answer", envelope.id) from None
        self.forwarded += 1
        return _routed(json.loads(reply), envelope.id)

    def handler(self, engine: Engine) -> Callable[[bytes], Any]:
        """Answers the commands other nodes forward to this one."""

        async def serve(request: bytes) -> bytes:
            self.served += 1
            return json.dumps(await self._run(engine, request)).encode()

        return serve

    async def _run(self, engine: Engine, request: bytes) -> dict[str, Any]:
        try:
            data = json.loads(request)
            if "in_flight" in data:
                return {"in_flight": _in_flight(engine, str(data["in_flight"]))}
            envelope = p.decode_client(data["frame"])
            seat = data["seat"]
            chat_id = chat_of(envelope.message)
            if chat_id is None or not isinstance(seat, str):
                raise p.ProtocolError("bad_message", "not a forwarded command")
            if not self._writable(chat_id):
                raise _unavailable(chat_id, "its node is moving", envelope.id)
            routed = await run_forwarded(engine, envelope, seat)
        except p.ProtocolError as exc:
            return {"error": {"code": exc.code, "message": exc.message}}
        except trio.Cancelled:
            raise
        except Exception:
            log.exception("a forwarded command failed")
            return {"error": {"code": "internal", "message": "the command failed on our side"}}
        answer = None if routed.answer is None else p.to_wire(routed.answer)
        return {"answer": answer, "seat": routed.seat}

    def statistics(self) -> dict[str, int]:
        return {
            "forwarded": self.forwarded,
            "served": self.served,
            "unavailable": self.unavailable,
        }


def _in_flight(engine: Engine, chat_id: str) -> dict[str, Any] | None:
    """The beat this node streams in the chat, so far (a node that joined it mid-way asks)."""
    feeds = engine.svc.feeds
    found = feeds(chat_id).in_flight() if chat_id in feeds else None
    return None if found is None else attrs.asdict(found)


def encode_envelope(envelope: p.Envelope) -> str:
    """The client's frame again, with its ``id``."""
    return p.encode_client(envelope.message, envelope.id, command_id=envelope.command_id)


def _routed(data: dict[str, Any], reply_to: str | None) -> Routed:
    error = data.get("error")
    if error is not None:
        raise p.ProtocolError(error["code"], error["message"], reply_to)
    answer = data.get("answer")
    message = None if answer is None else p.decode_server(json.dumps(answer)).message
    return Routed(message, data["seat"])
