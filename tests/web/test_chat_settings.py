"""``update_chat_settings`` over a real WebSocket: bounded, merged, projected, shown, applied."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from gateway_kit import Client, Server, make_chat

from llm import NarrativeRequest

DEFAULTS = {
    "temperature": None,
    "top_p": None,
    "min_p": None,
    "repeat_penalty": None,
    "max_tokens": None,
}


async def test_settings_are_set_merged_and_shown_in_chat_state(client: Client) -> None:
    chat_id = await make_chat(client)
    state = await client.ask("open_chat", chat_id=chat_id)
    assert "settings" not in state  # at the backend's defaults: nothing to send
    reply = await client.ask("update_chat_settings", chat_id=chat_id, temperature=0.4, top_p=0.9)
    assert reply == {
        "type": "chat_settings",
        "chat_id": chat_id,
        "settings": {**DEFAULTS, "temperature": 0.4, "top_p": 0.9},
        "reply_to": reply["reply_to"],
    }
    again = await client.ask(
        "update_chat_settings", chat_id=chat_id, min_p=0.1, repeat_penalty=1.3, max_tokens=120
    )
    settings = {"temperature": 0.4, "top_p": 0.9, "min_p": 0.1, "repeat_penalty": 1.3}
    assert again["settings"] == {**settings, "max_tokens": 120}  # the left-out ones stayed
    await client.ask("close_chat", chat_id=chat_id)
    state = await client.ask("open_chat", chat_id=chat_id)
    assert state["settings"] == {**settings, "max_tokens": 120}


async def test_bad_values_are_invalid_and_write_nothing(client: Client, server: Server) -> None:
    chat_id = await make_chat(client)
    await client.ask("update_chat_settings", chat_id=chat_id, temperature=0.5)
    before = await server.event_count()
    for fields in (
        {"temperature": 2.5},
        {"temperature": -0.1},
        {"top_p": 0},
        {"min_p": 1.5},
        {"repeat_penalty": 0.5},
        {"max_tokens": 0},
        {"max_tokens": 100000},
        {"temperature": 0.7, "max_tokens": 5},  # one bad value spoils the whole change
    ):
        error = await client.ask("update_chat_settings", chat_id=chat_id, **fields)
        assert error["type"] == "error" and error["code"] == "invalid", fields
        name = next(k for k in fields if k != "temperature" or len(fields) == 1)
        assert name in error["message"]
    wrong = await client.ask("update_chat_settings", chat_id=chat_id, temperature="hot")
    assert wrong["code"] == "bad_message"
    missing = await client.ask("update_chat_settings", chat_id="nope", temperature=0.5)
    assert missing["code"] == "not_found"
    assert await server.event_count() == before
    state = await client.ask("open_chat", chat_id=chat_id)
    assert state["settings"] == {**DEFAULTS, "temperature": 0.5}


async def test_an_empty_change_writes_nothing_and_answers_the_settings(
    client: Client, server: Server
) -> None:
    chat_id = await make_chat(client)
    before = await server.event_count()
    reply = await client.ask("update_chat_settings", chat_id=chat_id)
    assert reply["settings"] == DEFAULTS
    assert await server.event_count() == before


@asynccontextmanager
async def recording(server: Server) -> AsyncIterator[list[NarrativeRequest]]:
    """Every narrative request the scripted backend streams, while the block runs."""
    seen: list[NarrativeRequest] = []
    backend: Any = server.backend
    stream = backend.stream

    def recorded(request: NarrativeRequest) -> Any:
        seen.append(request)
        return stream(request)

    backend.stream = recorded
    try:
        yield seen
    finally:
        backend.stream = stream


async def test_the_next_beat_samples_with_the_chat_s_settings(
    client: Client, server: Server
) -> None:
    chat_id = await make_chat(client)
    other = await make_chat(client)
    await client.ask("open_chat", chat_id=chat_id)
    await client.ask(
        "update_chat_settings",
        chat_id=chat_id,
        temperature=0.3,
        top_p=0.8,
        min_p=0.07,
        repeat_penalty=1.25,
        max_tokens=64,
    )
    async with recording(server) as seen:
        server.backend.push_narrative("Mira nods.")
        await client.ask("send_turn", chat_id=chat_id, prose="Hello.")
        await client.turn()
        server.backend.push_narrative("Mira shrugs.")
        await client.ask("open_chat", chat_id=other)
        await client.ask("send_turn", chat_id=other, prose="Hello.")
        await client.until("turn_settled", lambda m: m["chat_id"] == other)
    tuned, plain = seen
    assert (tuned.temperature, tuned.top_p, tuned.min_p) == (0.3, 0.8, 0.07)
    assert (tuned.repeat_penalty, tuned.max_tokens) == (1.25, 64)
    assert (plain.top_p, plain.min_p, plain.repeat_penalty) == (None, None, None)
    assert plain.temperature == 0.8 and plain.max_tokens == 300  # the engine's own
