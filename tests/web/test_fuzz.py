"""Thousands of random and hostile frames: each is answered, none with ``internal``,
the connection stays open, and a refused frame writes nothing."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio
from gateway_kit import TOKEN, Client, Server, make_chat
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from trio_websocket import ConnectionClosed, open_websocket_url

from actors import EngineSettings, open_engine
from llm import ScriptedBackend
from protocol import CLIENT_TYPES
from store import Store
from web import Gateway, GatewaySettings

FRAMES = 2000

JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
LONE_SURROGATE = st.builds(
    lambda before, lone, after: before + lone + after,
    st.text(max_size=6),
    st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF),
    st.text(max_size=6),
)
"""Text that JSON can carry (as a ``\\ud800`` escape) but UTF-8 cannot."""
OUT_OF_RANGE = st.sampled_from([2**63, 2**64, -(2**63) - 1, -1, 0, 10**40, -(10**40)])
HOSTILE = (
    OUT_OF_RANGE
    | st.integers()
    | LONE_SURROGATE
    | st.booleans()
    | st.none()
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
    | st.lists(st.integers(), max_size=2)
    | st.dictionaries(st.text(max_size=4), st.integers(), max_size=2)
)
# Commands that would write if well-formed are sent with fields that are wrong on purpose.
WRITERS = [
    "set_you",
    "create_bot",
    "update_bot",
    "delete_bot",
    "create_chat",
    "send_turn",
    "regenerate",
    "rewind",
    "pin_memory",
    "create_world_event",
]


def templates(chat_id: str, bot_id: str) -> dict[str, dict[str, Any]]:
    """A well-formed message of every type, aimed at a real chat and bot so it reaches the actors.

    ``open_chat`` is aimed elsewhere: this connection must not watch the chat,
    so that every frame has exactly one answer.
    """
    change = {"source_id": bot_id, "target_id": "you", "affinity_delta": 5, "trust_delta": -5}
    return {
        "hello": {"protocol": 1},
        "set_you": {"name": "Ana", "persona": "a sailor"},
        "create_bot": {"name": "Tobias", "persona": "lamplighter", "greeting": "Evening."},
        "update_bot": {"bot_id": bot_id, "name": "Mira", "persona": "gruff", "greeting": "Hm."},
        "delete_bot": {"bot_id": bot_id},
        "create_chat": {"host_bot_id": bot_id, "location": "The Eel", "title": "Night"},
        "open_chat": {"chat_id": "elsewhere", "after_seq": 3},
        "close_chat": {"chat_id": chat_id},
        "send_turn": {"chat_id": chat_id, "prose": "Hello there."},
        "cancel": {"chat_id": chat_id},
        "regenerate": {"chat_id": chat_id, "event_id": 4, "prose": "again"},
        "rewind_preview": {"chat_id": chat_id, "event_id": 3},
        "rewind": {"chat_id": chat_id, "event_id": 3},
        "list_memories": {"bot_id": bot_id, "chat_id": chat_id},
        "pin_memory": {"memory_id": 1, "pinned": True},
        "create_world_event": {
            "chat_id": chat_id,
            "title": "Storm",
            "description": "A storm",
            "artifacts": {
                "knowledge_facts": [{"source_id": bot_id, "target_id": "you", "fact": "is wet"}],
                "relationship_changes": [change],
                "acquired_objects": [{"holder_id": "you", "name": "lantern"}],
            },
        },
    }


Steps = tuple[str | int, ...]


def leaves(value: Any, path: Steps = ()) -> list[Steps]:
    """The path to every scalar in a JSON value."""
    if isinstance(value, dict):
        return [leaf for k, v in value.items() for leaf in leaves(v, (*path, k))]
    if isinstance(value, list):
        return [leaf for i, v in enumerate(value) for leaf in leaves(v, (*path, i))]
    return [path]


def put(value: Any, path: Steps, new: Any) -> Any:
    """A copy of ``value`` with the scalar at ``path`` replaced by ``new``."""
    if not path:
        return new
    head, *rest = path
    if isinstance(value, dict):
        return {k: put(v, tuple(rest), new) if k == head else v for k, v in value.items()}
    return [put(v, tuple(rest), new) if i == head else v for i, v in enumerate(value)]


def deep(depth: int) -> str:
    """JSON arrays nested ``depth`` deep."""
    return "[" * depth + "]" * depth


HOLE = "@deep@"
"""Where a frame gets its deep nesting (``json.dumps`` would recurse too deep to make it)."""


def frames(chat_id: str, bot_id: str) -> st.SearchStrategy[str]:
    random_text = st.text(max_size=200)
    random_json = JSONISH.map(json.dumps)
    bad_command = st.builds(
        lambda kind, fields: json.dumps({"type": kind, **fields}),
        st.sampled_from(WRITERS),
        st.dictionaries(
            st.sampled_from(
                [
                    "chat_id",
                    "bot_id",
                    "event_id",
                    "memory_id",
                    "prose",
                    "name",
                    "persona",
                    "pinned",
                    "host_bot_id",
                    "title",
                    "id",
                ]
            ),
            st.none() | st.integers() | st.lists(st.integers(), max_size=2) | st.just("nope"),
            max_size=4,
        ),
    )
    any_type = st.builds(
        lambda kind, fields: json.dumps({"type": kind, **fields}),
        st.sampled_from([*CLIENT_TYPES, "dance", ""]),
        st.dictionaries(st.text(max_size=6), JSONISH, max_size=3),
    )
    shapes = templates(chat_id, bot_id)

    kinds = st.sampled_from(sorted(shapes))

    @st.composite
    def spoiled_field(draw: st.DrawFn) -> str:
        kind = draw(kinds)
        fields = shapes[kind]
        for path in draw(st.lists(st.sampled_from(leaves(fields)), min_size=1, max_size=2)):
            fields = put(fields, path, draw(HOSTILE))
        ident = draw(st.none() | st.text(max_size=8))
        return json.dumps({"type": kind, "id": ident, **fields})

    @st.composite
    def spoiled_id(draw: st.DrawFn) -> str:
        kind = draw(kinds)
        return json.dumps({"type": kind, "id": draw(LONE_SURROGATE | HOSTILE), **shapes[kind]})

    depths = st.integers(60, 70) | st.integers(900, 1100) | st.integers(5000, 30000)
    hiding = st.sampled_from(
        [
            {"type": "list_bots", "id": "deep", "x": HOLE},
            {"type": "send_turn", "chat_id": chat_id, "prose": HOLE},
            {"type": "create_world_event", "chat_id": chat_id, "title": "t", "artifacts": HOLE},
            {"type": "rewind_preview", "chat_id": chat_id, "event_id": HOLE},
        ]
    )
    nested = st.builds(deep, depths) | st.builds(
        lambda frame, depth: json.dumps(frame).replace(json.dumps(HOLE), deep(depth)),
        hiding,
        depths,
    )
    return st.one_of(
        random_text, random_json, bad_command, any_type, spoiled_field(), spoiled_id(), nested
    )


@attrs.define
class Tally:
    """What the fuzzed frames got: answers, and the frames that went wrong, by how."""

    answers: list[dict[str, Any]] = attrs.Factory(list)
    internal: list[str] = attrs.Factory(list)
    closed: list[str] = attrs.Factory(list)
    wrote: list[str] = attrs.Factory(list)

    def report(self, total: int) -> str:
        def some(frames: list[str]) -> str:
            return "; ".join(f[:100] for f in frames[:3])

        return (
            f"of {total} frames, {len(self.internal)} answered internal ({some(self.internal)}),"
            f" {len(self.closed)} closed the connection ({some(self.closed)}),"
            f" {len(self.wrote)} were refused but wrote ({some(self.wrote)})"
        )


async def play(server: Server, sent: list[str]) -> Tally:
    """Send every frame in order; after a frame that closes the connection, connect again."""
    tally = Tally()
    pending = list(reversed(sent))
    count = await server.engine.store.run(Store.event_count)
    for _ in range(len(sent) + 1):  # one connection per closing frame at most
        if not pending:
            break
        async with open_websocket_url(server.url) as ws:
            while pending:
                frame = pending.pop()
                try:
                    await ws.send_message(frame)
                    with trio.fail_after(10):
                        answer = json.loads(await ws.get_message())
                except ConnectionClosed:
                    tally.closed.append(frame)
                    break
                tally.answers.append(answer)
                if answer["type"] == "accepted":  # a frame that happens to be a valid turn
                    await server.engine.wait_settled(answer["chat_id"])
                now = await server.engine.store.run(Store.event_count)
                if answer["type"] == "error":
                    if answer["code"] == "internal":
                        tally.internal.append(frame)
                    if now != count:
                        tally.wrote.append(frame)
                count = now
    return tally


async def test_hostile_frames_are_answered_without_internal_or_a_close(server: Server) -> None:
    server.gateway.settings = attrs.evolve(server.gateway.settings, rate=1e9, burst=10**9)
    async with open_websocket_url(server.url) as ws:
        client = Client(ws)
        chat_id = await make_chat(client)
        bot_id = (await client.ask("list_bots"))["bots"][0]["id"]
        server.backend.push_narrative("Mira nods.", keep=True)
        assert (await client.ask("send_turn", chat_id=chat_id, prose="Hi"))["type"] == "accepted"
        await server.engine.wait_settled(chat_id)
        sent: list[str] = []

        @settings(max_examples=FRAMES, deadline=None, suppress_health_check=list(HealthCheck))
        @given(frames(chat_id, bot_id))
        def collect(frame: str) -> None:
            sent.append(frame)

        collect()
        # The fuzzer reaches what it is meant to: lone surrogates, deep nesting, huge numbers.
        assert sum("\\ud" in f for f in sent) > len(sent) // 20
        assert sum("[[[[[[[[[[" * 6 in f for f in sent) > len(sent) // 20
        assert sum(str(2**63) in f or str(2**64) in f for f in sent) > len(sent) // 100

        tally = await play(server, sent)
        assert (tally.internal, tally.closed, tally.wrote) == ([], [], []), tally.report(len(sent))
        assert len(tally.answers) == len(sent)
        assert sum(1 for a in tally.answers if a["type"] == "error") > len(sent) * 0.8
        # The first connection, idle all along, and the server are still there.
        assert (await client.ask("list_bots"))["type"] == "bots"
        assert (await client.ask("open_chat", chat_id=chat_id))["type"] == "chat_state"


class HeldBackend(ScriptedBackend):
    """A scripted model that holds each beat after its first token until ``release`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.holding = trio.Event()
        self.release = trio.Event()

    @asynccontextmanager
    async def stream(self, request: Any) -> AsyncIterator[AsyncIterator[str]]:
        async with super().stream(request) as tokens:
            yield self._held(tokens)

    async def _held(self, tokens: AsyncIterator[str]) -> AsyncIterator[str]:
        first = True
        async for token in tokens:
            yield token
            if first:  # the first token is out: the beat is streaming
                first = False
                self.holding.set()
                await self.release.wait()


BEAT = "Mira sets down the glass and leans across the bar."


@asynccontextmanager
async def held_server(tmp_path: Path) -> AsyncIterator[tuple[Client, HeldBackend]]:
    backend = HeldBackend()
    engine_settings = EngineSettings(
        db_path=tmp_path / "t.db", data_dir=tmp_path, classifier_timeout=5
    )
    async with open_engine(engine_settings, narrative=backend, classifier=backend) as engine:
        gateway = Gateway(engine, GatewaySettings(token=TOKEN, port=0))
        async with trio.open_nursery() as nursery:
            port = await nursery.start(gateway.run)
            async with open_websocket_url(f"ws://127.0.0.1:{port}/ws?token={TOKEN}") as ws:
                yield Client(ws), backend
            nursery.cancel_scope.cancel()


async def test_an_event_id_past_64_bits_is_refused_while_a_beat_streams_on(
    tmp_path: Path,
) -> None:
    async with held_server(tmp_path) as (client, backend):
        chat_id = await make_chat(client)
        await client.ask("open_chat", chat_id=chat_id)
        backend.push_narrative(BEAT)
        assert (await client.ask("send_turn", chat_id=chat_id, prose="Well?"))["type"] == (
            "accepted"
        )
        with trio.fail_after(10):
            await backend.holding.wait()
        answer = await client.ask("rewind_preview", chat_id=chat_id, event_id=2**64)
        backend.release.set()
        complete = await client.until("beat_complete")
        # Both at once, so that a failure shows the answer and what became of the beat.
        assert (answer.get("code"), complete["truncated"], complete["error"]) == (
            "bad_message",
            False,
            None,
        )
        assert "event_id" in answer["message"]
        assert complete["text"] == BEAT
        await client.until("turn_settled")
        timeline = (await client.ask("open_chat", chat_id=chat_id))["timeline"]
        assert timeline[-1]["text"] == BEAT and not timeline[-1]["truncated"]


async def test_a_lone_surrogate_is_refused_while_a_beat_streams_on(tmp_path: Path) -> None:
    async with held_server(tmp_path) as (client, backend):
        chat_id = await make_chat(client)
        await client.ask("open_chat", chat_id=chat_id)
        backend.push_narrative(BEAT)
        await client.ask("send_turn", chat_id=chat_id, prose="Well?")
        with trio.fail_after(10):
            await backend.holding.wait()
        answer = await client.ask("create_world_event", chat_id=chat_id, title="Storm\ud800")
        backend.release.set()
        complete = await client.until("beat_complete")
        assert (answer.get("code"), complete["truncated"], complete["error"]) == (
            "bad_message",
            False,
            None,
        )
        assert "title" in answer["message"]
        assert complete["text"] == BEAT


TOO_LARGE = [
    json.dumps({"type": "list_bots", "id": "x\ud800", "pad": "a" * 70_000}),
    deep(40_000),
]


async def test_an_oversized_frame_gets_too_large_without_an_unusable_id(server: Server) -> None:
    for frame in TOO_LARGE:
        async with open_websocket_url(server.url) as ws:
            await ws.send_message(frame)
            with trio.fail_after(10):
                answer = json.loads(await ws.get_message())
            assert (answer["code"], answer["reply_to"]) == ("too_large", None)
            with pytest.raises(ConnectionClosed) as info, trio.fail_after(10):
                await ws.get_message()
            assert info.value.reason.code == 1009


async def test_a_rate_limited_frame_is_answered_without_an_unusable_id(server: Server) -> None:
    server.gateway.settings = attrs.evolve(server.gateway.settings, rate=0.001, burst=1)
    async with open_websocket_url(server.url) as ws:
        client = Client(ws)
        assert (await client.ask("list_bots"))["type"] == "bots"  # the one frame of the burst
        for frame in [json.dumps({"type": "list_bots", "id": "x\ud800"}), deep(30_000)]:
            await ws.send_message(frame)
            with trio.fail_after(10):
                answer = json.loads(await ws.get_message())
            assert (answer["code"], answer["reply_to"]) == ("rate_limited", None)
        await ws.send_message(json.dumps({"type": "list_bots", "id": "ok"}))
        with trio.fail_after(10):
            answer = json.loads(await ws.get_message())
        assert (answer["code"], answer["reply_to"]) == ("rate_limited", "ok")
