"""Protocol clients of the cluster tests, and the checks of what a viewer saw.

A :class:`Client` keeps every message it receives, in order, read by a task
of its own: a test asks a node something, waits for a message that matches,
and afterwards folds everything a viewer got about a chat (:func:`fold`)
to check it the way a client would draw it: ``seq`` one by one, tokens at
their offsets, beats as committed.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import attrs
import trio
from trio_websocket import ConnectionClosed, connect_websocket_url

Message = dict[str, Any]

ANSWER_WITHIN = 30.0
"""Seconds a command's direct answer may take (a forwarded command waits on its owner)."""

_ids = itertools.count(1)


class Closed(Exception):
    """The node closed the connection (or died) before the awaited message came."""


class Client:
    """One WebSocket connection to one node; every message it got, in arrival order."""

    def __init__(self, name: str, ws: Any) -> None:
        self.name = name
        self.ws = ws
        self.store: str | None = None
        """The cluster's database, where the client waits for the next lease round."""
        self.output: Any = None
        """What its node prints: where it waits for the node's next round while the
        database is away (a ``tests.support.servers.Output``)."""
        self.messages: list[Message] = []
        self.closed = False
        self._arrived = trio.Event()

    async def _read(self) -> None:
        try:
            while True:
                self.messages.append(json.loads(await self.ws.get_message()))
                self._arrived.set()
                self._arrived = trio.Event()
        except ConnectionClosed:
            pass
        finally:
            self.closed = True
            self._arrived.set()

    async def send(self, type: str, **fields: Any) -> str:
        """Send a command with a fresh ``id``; the id."""
        ident = f"{self.name}-{next(_ids)}"
        await self.ws.send_message(json.dumps({"type": type, "id": ident, **fields}))
        return ident

    async def wait_for(
        self, where: Callable[[Message], bool], *, since: int = 0, within: float = ANSWER_WITHIN
    ) -> Message:
        """The first message from index ``since`` on that matches ``where``."""
        index = since
        with trio.fail_after(within):
            while True:
                while index < len(self.messages):
                    message = self.messages[index]
                    index += 1
                    if where(message):
                        return message
                if self.closed:
                    raise Closed(f"{self.name}: the connection closed")
                await self._arrived.wait()

    async def until(self, check: Callable[[], bool], within: float = ANSWER_WITHIN) -> None:
        """Until ``check()`` holds, looked at again as each message arrives."""
        with trio.fail_after(within):
            while not check():
                if self.closed:
                    raise Closed(f"{self.name}: the connection closed")
                await self._arrived.wait()

    async def answer(self, ident: str, within: float = ANSWER_WITHIN) -> Message:
        """The direct answer to the command sent with ``ident``."""
        return await self.wait_for(lambda m: m.get("reply_to") == ident, within=within)

    async def ask(self, type: str, **fields: Any) -> Message:
        """Send a command and return its direct answer."""
        return await self.answer(await self.send(type, **fields))

    async def ok(self, type: str, **fields: Any) -> Message:
        """Like :meth:`ask`, but an ``error`` answer fails the test."""
        answer = await self.ask(type, **fields)
        assert answer["type"] != "error", f"{self.name}: {type} was refused: {answer}"
        return answer

    async def statistics(self) -> dict[str, Any]:
        """The node's own cluster figures (``statistics.engine.cluster``)."""
        answer = await self.ok("get_statistics")
        figures: dict[str, Any] = answer["statistics"]["engine"]["cluster"]
        return figures

    def about(self, chat_id: str) -> list[Message]:
        """Every message of the chat this client got, in order."""
        return [m for m in self.messages if m.get("chat_id") == chat_id]


C = TypeVar("C", bound="Client")


@asynccontextmanager
async def connect(
    urls: list[tuple[str, str]],
    make: Callable[[str, Any], C] = Client,  # type: ignore[assignment]
) -> AsyncIterator[list[C]]:
    """Clients that said hello, one per ``(url, name)``; all closed when the block ends.

    One nursery holds every connection and reader, so a failure shows as one
    group of errors rather than one group in another per client. ``make``
    builds each client (a subclass of :class:`Client`, say).
    """
    async with trio.open_nursery() as nursery:
        opened: list[C] = []
        try:
            for url, name in urls:
                client = make(name, await connect_websocket_url(nursery, url))
                opened.append(client)
                nursery.start_soon(client._read)
                welcome = await client.ask("hello", protocol=1)
                assert welcome["type"] == "welcome", welcome
            yield opened
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(5):
                for client in opened:
                    await client.ws.aclose()
            nursery.cancel_scope.cancel()


@attrs.define
class Beat:
    """One beat as a viewer saw it: the text its tokens built, and how it ended."""

    user_turn_id: int | None = None
    streamed: str = ""
    complete: Message | None = None


@attrs.define
class Fold:
    """What a viewer saw of one chat, and what was wrong with it."""

    seqs: list[int] = attrs.Factory(list)
    beats: dict[int, Beat] = attrs.Factory(dict)
    resyncs: int = 0
    """``chat_state`` messages after the first: the node started the viewer afresh."""
    problems: list[str] = attrs.Factory(list)
    settled: list[int] = attrs.Factory(list)
    """The ``user_turn_id`` of every ``turn_settled``."""
    timeline: dict[int, Message] = attrs.Factory(dict)
    """The last beat of each user turn in the latest ``chat_state``, by ``user_turn_id``."""

    def beat_of(self, user_turn_id: int) -> Beat | None:
        """The (last) beat that answers the user turn."""
        found = [b for b in self.beats.values() if b.user_turn_id == user_turn_id]
        return found[-1] if found else None

    def ended(self, user_turn_id: int) -> tuple[str, bool] | None:
        """``(text, truncated)`` of the turn's beat once the viewer knows it ended."""
        beat = self.beat_of(user_turn_id)
        if beat is not None and beat.complete is not None:
            return beat.complete["text"], beat.complete["truncated"]
        turn = self.timeline.get(user_turn_id)
        if turn is not None:
            return turn["text"], turn["truncated"]
        return None


def fold(messages: list[Message]) -> Fold:
    """Read a viewer's messages of one chat the way a client draws them.

    Every numbered message must come right after the one before (a
    ``chat_state`` says where it starts again); every token must start where
    the beat's text so far ends (a ``chat_state``'s ``in_flight`` gives the
    text so far). Anything else is a problem: a hole or a duplicate.
    """
    seen = Fold()
    last: int | None = None
    states = 0
    for message in messages:
        kind = message["type"]
        if kind == "chat_state":
            states += 1
            last = message["seq"]
            seen.timeline = {
                t["user_turn_id"]: t for t in message["timeline"] if t["kind"] == "assistant"
            }
            flight = message.get("in_flight")
            if flight is not None:
                beat = seen.beats.setdefault(flight["beat_id"], Beat())
                beat.streamed = flight["text"]
                # Its beat_started may be older than this state: the beat answers the
                # latest turn of the person.
                asked = [t["event_id"] for t in message["timeline"] if t["kind"] == "user"]
                if beat.user_turn_id is None and asked:
                    beat.user_turn_id = max(asked)
            continue
        if kind == "token":
            beat = seen.beats.setdefault(message["beat_id"], Beat())
            if message["offset"] != len(beat.streamed):
                what = "hole" if message["offset"] > len(beat.streamed) else "duplicate"
                seen.problems.append(
                    f"token {what} in beat {message['beat_id']}: offset {message['offset']} "
                    f"after {len(beat.streamed)} characters"
                )
            beat.streamed = beat.streamed[: message["offset"]] + message["text"]
            continue
        seq = message.get("seq")
        if seq is None or seq == 0:
            continue  # not a numbered message, or one that was not committed
        if last is not None and seq != last + 1:
            what = "gap" if seq > last + 1 else "duplicate"
            seen.problems.append(f"seq {what}: {kind} with seq {seq} after {last}")
        last = seq
        seen.seqs.append(seq)
        if kind == "beat_started":
            seen.beats.setdefault(message["beat_id"], Beat()).user_turn_id = message[
                "user_turn_id"
            ]
        elif kind == "beat_complete":
            seen.beats.setdefault(message["beat_id"], Beat()).complete = message
        elif kind == "turn_settled":
            seen.settled.append(message["user_turn_id"])
    seen.resyncs = max(0, states - 1)
    return seen
