"""Thousands of random and malformed frames: the server stays up and writes nothing."""

from __future__ import annotations

import json
from typing import Any

import attrs
import trio
from gateway_kit import Client, Server, make_chat
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from trio_websocket import open_websocket_url

from protocol import CLIENT_TYPES
from store import Store

JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
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


def frames() -> st.SearchStrategy[str]:
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
    return random_text | random_json | bad_command | any_type


async def test_random_frames_never_break_the_server(server: Server) -> None:
    received: list[dict[str, Any]] = []
    server.gateway.settings = attrs.evolve(server.gateway.settings, rate=1e9, burst=10**9)
    async with open_websocket_url(server.url) as ws:
        client = Client(ws)
        chat_id = await make_chat(client)
        before = await server.engine.store.run(Store.event_count)
        sent: list[str] = []

        @settings(max_examples=2000, deadline=None, suppress_health_check=list(HealthCheck))
        @given(frames())
        def collect(frame: str) -> None:
            sent.append(frame)

        collect()
        count = before
        for frame in sent:
            await ws.send_message(frame)
            with trio.fail_after(10):
                answer = json.loads(await ws.get_message())
            received.append(answer)
            if answer["type"] == "accepted":  # hypothesis found a valid turn: let it settle
                await server.engine.wait_settled(answer["chat_id"])
            now = await server.engine.store.run(Store.event_count)
            if answer["type"] == "error":
                assert now == count, f"{frame!r} was refused but wrote {now - count} events"
            count = now
        assert len(received) == len(sent)
        assert sum(1 for a in received if a["type"] == "error") > len(sent) * 0.9
        assert (await client.ask("list_bots"))["type"] == "bots"
        assert (await client.ask("open_chat", chat_id=chat_id))["type"] == "chat_state"
