"""One connection's reader: slow commands beside it, bad input answered and kept out of the log."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio
from gateway_kit import Client, Server, make_chat, open_server
from trio_websocket import open_websocket_url

import protocol
from web._commands import COMMANDS

BAD_FRAMES = [
    "not json",
    '["a list"]',
    '{"type": "dance", "id": "d"}',
    '{"type": "send_turn", "chat_id": 7, "prose": "x"}',
    '{"type": "send_turn", "chat_id": "nope", "prose": "hi"}',
    '{"type": "open_chat", "chat_id": "nope"}',
    '{"type": "close_chat", "chat_id": "nope"}',
    '{"type": "delete_bot", "bot_id": "nobody"}',
    '{"type": "hello", "protocol": 2}',
    '{"type": "pin_memory", "memory_id": 99999999999999999999999, "pinned": true}',
]


async def test_a_cancel_sent_after_a_slow_delete_bot_is_answered_first(
    client: Client, server: Server
) -> None:
    chat_id = await make_chat(client, guest=True)
    await client.ask("open_chat", chat_id=chat_id)
    server.backend.push_narrative("A long tale of the sea", stall_after=2)
    await client.ask("send_turn", chat_id=chat_id, prose="Tell me")
    await client.until("token")
    # Deleting the guest waits for the chat's turn to settle, which needs the cancel.
    deleting = await client.send("delete_bot", bot_id="tobias")
    cancelling = await client.send("cancel", chat_id=chat_id)
    answers = []
    while len(answers) < 2:
        message = await client.recv()
        if message.get("reply_to") in (deleting, cancelling):
            answers.append(message)
    assert answers == [
        {"type": "ok", "reply_to": cancelling},
        {"type": "ok", "reply_to": deleting},
    ]
    assert [b["id"] for b in (await client.ask("list_bots"))["bots"]] == ["mira"]


def test_every_client_message_type_has_exactly_one_handler() -> None:
    assert set(COMMANDS) == set(protocol.CLIENT_TYPES.values())
    handlers = [command.handle for command in COMMANDS.values()]
    assert len(set(handlers)) == len(handlers) == len(protocol.CLIENT_TYPES)
    slow = {kind for kind, command in COMMANDS.items() if command.slow}
    assert slow == {protocol.DeleteBot, protocol.Rewind, protocol.SwitchBranch}


@asynccontextmanager
async def store_held(server: Server) -> AsyncIterator[threading.Event]:
    """The store's thread busy with a job until the yielded event is set (or 30 s)."""
    gate = threading.Event()
    entered = trio.Event()
    token = trio.lowlevel.current_trio_token()

    def hold(_store: object) -> None:
        trio.from_thread.run_sync(entered.set, trio_token=token)
        gate.wait(30)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(server.engine.store.run, hold)
        await entered.wait()
        try:
            yield gate
        finally:
            gate.set()


async def test_a_cancel_is_answered_while_a_rewind_waits_for_the_store(
    client: Client, server: Server
) -> None:
    rewound_chat = await make_chat(client)
    streaming_chat = await make_chat(client)
    await client.ask("open_chat", chat_id=rewound_chat)
    await client.ask("open_chat", chat_id=streaming_chat)
    server.backend.push_narrative("Mira nods.", match="Mira")
    turn = await client.ask("send_turn", chat_id=rewound_chat, prose="Hello.")
    await client.until("turn_settled", lambda m: m["chat_id"] == rewound_chat)
    server.backend.push_narrative("A long tale of the sea", stall_after=2)
    await client.ask("send_turn", chat_id=streaming_chat, prose="Tell me")
    await client.until("token", lambda m: m["chat_id"] == streaming_chat)
    async with store_held(server) as gate:
        # The rewind waits for the store (as behind another chat's long rewind); the
        # cancel after it needs no store and must not wait behind it.
        rewinding = await client.send(
            "rewind", chat_id=rewound_chat, event_id=turn["user_turn_id"]
        )
        cancelling = await client.send("cancel", chat_id=streaming_chat)
        with trio.fail_after(5):
            assert await client.answer(cancelling) == {"type": "ok", "reply_to": cancelling}
        assert not any(m.get("reply_to") == rewinding for m in client.backlog)
        gate.set()
        assert (await client.answer(rewinding))["type"] == "rewound"
    complete = await client.until("beat_complete", lambda m: m["chat_id"] == streaming_chat)
    assert complete["error"] == "cancelled"


async def test_answers_to_fast_commands_go_out_in_the_order_sent(client: Client) -> None:
    chat_id = await make_chat(client)
    sent = []
    for n in range(5):
        sent.append(await client.send("list_bots"))
        sent.append(await client.send("create_bot", name=f"Bot{n}", persona="extra"))
        sent.append(await client.send("rewind_preview", chat_id=chat_id, event_id=10**6))
        sent.append(await client.send("list_chats"))
        sent.append(await client.send("statistics"))
    answers = [await client.recv() for _ in sent]
    assert [a["reply_to"] for a in answers] == sent
    assert [a["type"] for a in answers[:5]] == ["bots", "bot", "error", "chats", "statistics"]


async def test_a_client_that_leaves_still_has_its_slow_command_run(server: Server) -> None:
    async with open_websocket_url(server.url) as ws:
        client = Client(ws)
        chat_id = await make_chat(client, guest=True)
        server.backend.push_narrative("A long tale of the sea", stall_after=2)
        await client.ask("send_turn", chat_id=chat_id, prose="Tell me")
        await client.send("delete_bot", bot_id="tobias")
    async with open_websocket_url(server.url) as ws:
        other = Client(ws)
        await other.ask("cancel", chat_id=chat_id)
        await server.engine.wait_settled(chat_id)
        for _ in range(100):  # the delete commits right after the turn settles
            bots = (await other.ask("list_bots"))["bots"]
            if len(bots) == 1:
                break
        assert [b["id"] for b in bots] == ["mira"]


async def test_bad_input_is_answered_and_never_logs_a_traceback(
    client: Client, server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    for frame in BAD_FRAMES:
        await client.ws.send_message(frame)
        assert (await client.recv())["type"] == "error"
    await client.ws.send_message(b"\x00binary")
    assert (await client.recv())["code"] == "bad_message"
    assert (await client.ask("list_bots"))["type"] == "bots"
    assert [r for r in caplog.records if r.exc_info] == []
    assert len(caplog.records) <= len(BAD_FRAMES) + 1


async def test_rate_limited_frames_never_log_a_traceback(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with (
        open_server(tmp_path, rate=1, burst=2) as server,
        open_websocket_url(server.url) as ws,
    ):
        client = Client(ws)
        for _ in range(6):
            await client.send("list_bots")
        kinds = [(await client.recv()).get("code") for _ in range(6)]
    assert kinds.count("rate_limited") == 4
    assert [r for r in caplog.records if r.exc_info] == []
    assert len(caplog.records) <= 4


async def test_a_bug_in_decoding_answers_internal_and_keeps_the_connection(
    client: Client, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    decode = protocol.decode_client

    def buggy(frame: str | bytes) -> protocol.Envelope:
        if "boom" in str(frame):
            raise KeyError("a bug")
        return decode(frame)

    monkeypatch.setattr(protocol, "decode_client", buggy)
    await client.ws.send_message('{"type": "list_bots", "id": "b1", "boom": 1}')
    answer = await client.recv()
    assert answer["type"] == "error" and answer["code"] == "internal"
    assert answer["reply_to"] == "b1"
    assert (await client.ask("list_bots"))["type"] == "bots"
    assert [r.levelname for r in caplog.records if r.exc_info] == ["ERROR"]  # our bug is logged
