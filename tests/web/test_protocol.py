"""Protocol conformance over a real WebSocket: every command, every error code."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
import trio
from gateway_kit import TOKEN, Client, Server, make_chat
from trio_websocket import ConnectionClosed, HandshakeError, open_websocket_url

from actors import EngineSettings, open_engine
from llm import ScriptedBackend
from store import Store
from web import Gateway, GatewaySettings


async def test_hello_bots_chats_and_the_you_entity(client: Client) -> None:
    welcome = await client.ask("hello", protocol=1)
    assert welcome["type"] == "welcome" and welcome["protocol"] == 1
    assert welcome["you"]["id"] == "you"
    you = await client.ask("set_you", name="Ana", persona="sailor")
    assert you == {
        "type": "you",
        "you": {"id": "you", "name": "Ana", "persona": "sailor"},
        "reply_to": "m2",
    }
    bot = (await client.ask("create_bot", name="Mira", persona="barkeep", greeting="Hi."))["bot"]
    assert bot == {"id": "mira", "name": "Mira", "persona": "barkeep", "greeting": "Hi."}
    updated = await client.ask("update_bot", bot_id="mira", persona="gruff barkeep")
    assert updated["bot"]["persona"] == "gruff barkeep"
    assert (await client.ask("list_bots"))["bots"] == [updated["bot"]]
    chat = (await client.ask("create_chat", host_bot_id="mira", location="The Eel"))["chat"]
    assert chat["host_bot_id"] == "mira" and chat["location"] == "The Eel"
    assert [c["id"] for c in (await client.ask("list_chats"))["chats"]] == [chat["id"]]
    other = (await client.ask("create_bot", name="Tobias", persona="old"))["bot"]
    assert (await client.ask("delete_bot", bot_id=other["id"]))["type"] == "ok"


async def test_a_turn_streams_to_the_client_in_seq_order(client: Client, server: Server) -> None:
    chat_id = await make_chat(client)
    state = await client.ask("open_chat", chat_id=chat_id)
    assert state["type"] == "chat_state" and state["in_flight"] is None
    server.backend.push_narrative("Mira squints at the key.")
    server.backend.push_classifier("significance", 3)
    accepted = await client.ask("send_turn", chat_id=chat_id, prose='"Recognise this?"')
    assert accepted["type"] == "accepted"
    seen = []
    while not seen or seen[-1]["type"] != "turn_settled":
        seen.append(await client.recv())
    kinds = [m["type"] for m in seen]
    assert kinds[:2] == ["user_turn", "beat_started"] or "user_turn" in kinds
    text = "".join(m["text"] for m in seen if m["type"] == "token")
    complete = next(m for m in seen if m["type"] == "beat_complete")
    assert text == complete["text"] == "Mira squints at the key."
    seqs = [m["seq"] for m in seen if "seq" in m]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert all("seq" not in m for m in seen if m["type"] == "token")
    await server.engine.idle()
    memories = await client.ask("list_memories", bot_id="mira", chat_id=chat_id)
    memory = memories["memories"][0]
    pinned = await client.ask("pin_memory", memory_id=memory["id"], pinned=not memory["pinned"])
    assert pinned["memory"]["pinned"] is not memory["pinned"]


async def test_busy_cancel_regenerate_and_rewind(client: Client, server: Server) -> None:
    chat_id = await make_chat(client)
    await client.ask("open_chat", chat_id=chat_id)
    server.backend.push_narrative(text="A long tale of the sea", stall_after=2)
    await client.ask("send_turn", chat_id=chat_id, prose="Tell me")
    await client.until("token")
    before = await server.engine.store.run(Store.event_count)
    busy = await client.ask("send_turn", chat_id=chat_id, prose="Again")
    assert busy["type"] == "error" and busy["code"] == "busy"
    assert await server.engine.store.run(Store.event_count) == before
    assert (await client.ask("cancel", chat_id=chat_id))["type"] == "ok"
    complete = await client.until("beat_complete")
    assert complete["truncated"] is True and complete["error"] == "cancelled"
    await client.until("turn_settled")
    server.backend.push_narrative("A short one.")
    again = await client.ask("regenerate", chat_id=chat_id, event_id=complete["event_id"])
    assert again["type"] == "accepted"
    await client.until("turn_settled")
    state = await client.ask("open_chat", chat_id=chat_id)
    assert [t["text"] for t in state["timeline"]] == ["Tell me", "A short one."]
    older = await client.ask(
        "regenerate", chat_id=chat_id, event_id=state["timeline"][0]["event_id"]
    )
    assert older["code"] == "invalid"
    user_turn = state["timeline"][0]["event_id"]
    preview = await client.ask("rewind_preview", chat_id=chat_id, event_id=user_turn)
    assert preview["type"] == "rewind_preview" and preview["total_events"] > 0
    assert sum(preview["by_kind"].values()) == preview["total_events"]
    rewound = await client.ask("rewind", chat_id=chat_id, event_id=user_turn)
    assert rewound == {
        "type": "rewound",
        "chat_id": chat_id,
        "event_id": user_turn,
        "reply_to": rewound["reply_to"],
    }
    fresh = await client.until("chat_state", lambda m: len(m["timeline"]) == 1)
    assert [t["text"] for t in fresh["timeline"]] == ["Tell me"]


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("not json", "bad_json"),
        ('["a list"]', "bad_json"),
        ('{"type": "dance"}', "unknown_type"),
        ('{"type": "send_turn", "chat_id": 7, "prose": "x"}', "bad_message"),
        ('{"type": "send_turn", "chat_id": "nope", "prose": "hi"}', "not_found"),
        ('{"type": "open_chat", "chat_id": "nope"}', "not_found"),
        ('{"type": "hello", "protocol": 2}', "bad_message"),
        ('{"type": "send_turn", "chat_id": "c", "prose": "' + "x" * 9000 + '"}', "too_large"),
    ],
)
async def test_errors_carry_their_code_and_write_nothing(
    client: Client, server: Server, frame: str, code: str
) -> None:
    before = await server.engine.store.run(Store.event_count)
    await client.ws.send_message(frame)
    error = await client.recv()
    assert error["type"] == "error" and error["code"] == code and error["message"]
    assert await server.engine.store.run(Store.event_count) == before
    assert (await client.ask("list_bots"))["type"] == "bots"  # the connection goes on


async def test_binary_frames_and_oversized_frames(client: Client) -> None:
    await client.ws.send_message(b"\x00\x01")
    assert (await client.recv())["code"] == "bad_message"
    await client.ws.send_message(json.dumps({"type": "hello", "pad": "x" * (65 * 1024)}))
    assert (await client.recv())["code"] == "too_large"
    with pytest.raises(ConnectionClosed) as info:
        await client.recv()
    assert info.value.reason.code == 1009


async def test_rate_limited(server: Server) -> None:
    server.gateway.settings = type(server.gateway.settings)(token=TOKEN, rate=1, burst=3)
    async with open_websocket_url(server.url) as ws:
        client = Client(ws)
        codes = []
        for _ in range(6):
            await client.send("list_bots")
        for _ in range(6):
            codes.append((await client.recv())["type"])
        assert codes.count("bots") == 3 and codes.count("error") == 3


async def test_an_internal_error_answers_internal_and_spares_the_connection(
    client: Client, server: Server
) -> None:
    async def broken() -> object:
        raise RuntimeError("a bug")

    server.engine.list_chats = broken  # type: ignore[method-assign]
    error = await client.ask("list_chats")
    assert error["code"] == "internal"
    assert (await client.ask("list_bots"))["type"] == "bots"


async def test_a_failing_model_is_an_llm_error_and_the_turn_settles(
    client: Client, server: Server
) -> None:
    chat_id = await make_chat(client)
    await client.ask("open_chat", chat_id=chat_id)
    server.backend.push_narrative(text="It sank off", error="connection reset")
    await client.ask("send_turn", chat_id=chat_id, prose="The ferry?")
    error = await client.until("error")
    assert error["code"] == "llm_error" and error["chat_id"] == chat_id
    complete = await client.until("beat_complete")
    assert complete["truncated"] and "connection reset" in complete["error"]
    await client.until("turn_settled")


async def test_auth_origin_static_and_health(server: Server) -> None:
    base = f"http://127.0.0.1:{server.port}"
    async with httpx.AsyncClient(base_url=base) as http:
        assert (await http.get("/healthz")).text == "ok"
        page = await http.get("/")
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        for path in [
            "/static/../pyproject.toml",
            "/static/%2e%2e/%2e%2e/pyproject.toml",
            "/static//etc/passwd",
            "/nothing",
            "/static/",
        ]:
            assert (await http.get(path)).status_code == 404, path
    for url, headers, status in [
        (f"ws://127.0.0.1:{server.port}/ws", [], 401),
        (f"ws://127.0.0.1:{server.port}/ws?token=wrong", [], 401),
        (server.url, [("Origin", "http://evil.example")], 403),
    ]:
        with pytest.raises(HandshakeError) as info:
            async with open_websocket_url(url, extra_headers=headers):
                pass
        assert getattr(info.value, "status_code", None) == status
    own = [("Origin", f"http://127.0.0.1:{server.port}")]
    async with open_websocket_url(server.url, extra_headers=own) as ws:
        await ws.send_message('{"type":"hello","protocol":1}')
        assert json.loads(await ws.get_message())["type"] == "welcome"


async def test_two_clients_see_the_same_seqs_and_a_vanishing_client_does_not_cancel(
    server: Server, client: Client
) -> None:
    chat_id = await make_chat(client)
    await client.ask("open_chat", chat_id=chat_id)
    async with open_websocket_url(server.url) as ws:
        other = Client(ws)
        await other.ask("open_chat", chat_id=chat_id)
        server.backend.push_narrative("Both of you hear this.")
        await other.ask("send_turn", chat_id=chat_id, prose="Hello")
        await other.until("beat_started")
    # the sender vanished mid-turn; the turn still completes for the watcher left
    seen = []
    while not seen or seen[-1]["type"] != "turn_settled":
        message = await client.recv()
        if "seq" in message:
            seen.append(message)
    complete = next(m for m in seen if m["type"] == "beat_complete")
    assert complete["text"] == "Both of you hear this." and not complete["truncated"]


async def test_resume_after_seq(server: Server, client: Client) -> None:
    chat_id = await make_chat(client)
    state = await client.ask("open_chat", chat_id=chat_id)
    await client.ask("close_chat", chat_id=chat_id)
    server.backend.push_narrative("You missed this.")
    await client.ask("send_turn", chat_id=chat_id, prose="Hi")
    await server.engine.wait_settled(chat_id)
    ident = await client.send("open_chat", chat_id=chat_id, after_seq=state["seq"])
    # The direct answer is `ok` ahead of the replay; the replay is what was missed.
    assert await client.recv() == {"type": "ok", "reply_to": ident}
    replayed = []
    while not replayed or replayed[-1]["type"] != "turn_settled":
        replayed.append(await client.recv())
    assert [m["seq"] for m in replayed] == list(range(state["seq"] + 1, replayed[-1]["seq"] + 1))
    # Nothing missed: `ok` at once, and then only what comes next.
    ident = await client.send("open_chat", chat_id=chat_id, after_seq=replayed[-1]["seq"])
    assert await client.recv() == {"type": "ok", "reply_to": ident}
    ident = await client.send("open_chat", chat_id=chat_id, after_seq=99_999)
    fresh = await client.recv()
    assert fresh["type"] == "chat_state" and fresh["reply_to"] == ident


async def test_statistics(client: Client) -> None:
    stats = await client.ask("statistics")
    assert stats["statistics"]["connections"] == 1
    await trio.lowlevel.checkpoint()


async def test_a_slow_client_never_slows_the_stream_for_the_others(server: Server) -> None:
    async with (
        open_websocket_url(server.url) as fast_ws,
        open_websocket_url(server.url) as slow_ws,
    ):
        fast, slow = Client(fast_ws), Client(slow_ws)
        chat_id = await make_chat(fast)
        await fast.ask("open_chat", chat_id=chat_id)
        await slow.ask("open_chat", chat_id=chat_id)
        words = " ".join(f"w{i}" for i in range(3000))
        server.backend.push_narrative(words)
        await fast.ask("send_turn", chat_id=chat_id, prose="Go")
        # The slow client reads nothing while the whole beat streams to the fast one.
        complete = await fast.until("beat_complete")
        assert complete["text"] == words
        await fast.until("turn_settled")
        # Then it catches up: merged tokens, or a fresh chat_state, never a lost beat.
        seen, text = [], ""
        while True:
            message = await slow.recv()
            seen.append(message["type"])
            if message["type"] == "token":
                text += message["text"]
            if message["type"] == "chat_state":
                text = ""
            if message["type"] == "turn_settled":
                break
        tokens = seen.count("token")
        assert tokens < 3000 or "chat_state" in seen  # merged or resynced
        final = await slow.ask("open_chat", chat_id=chat_id)
        assert final["timeline"][-1]["text"] == words


async def test_shutdown_with_a_beat_in_flight_commits_it_and_closes_1001(tmp_path: Path) -> None:
    backend = ScriptedBackend()
    settings = EngineSettings(db_path=tmp_path / "t.db", data_dir=tmp_path)
    async with open_engine(settings, narrative=backend, classifier=backend) as engine:
        gateway = Gateway(engine, GatewaySettings(token=TOKEN, port=0))
        async with trio.open_nursery() as nursery:
            port = await nursery.start(gateway.run)
            async with open_websocket_url(f"ws://127.0.0.1:{port}/ws?token={TOKEN}") as ws:
                client = Client(ws)
                chat_id = await make_chat(client)
                await client.ask("open_chat", chat_id=chat_id)
                backend.push_narrative(text="A story that never ends", stall_after=2)
                await client.ask("send_turn", chat_id=chat_id, prose="Go on")
                await client.until("token")
                gateway.stop_accepting()
                await engine.shutdown()
                complete = await client.until("beat_complete")
                assert complete["truncated"] and complete["error"] == "shutdown"
                await gateway.close()
                with pytest.raises(ConnectionClosed) as info:
                    while True:  # what was sent before the close, then the close
                        await client.recv()
                assert info.value.reason.code == 1001
            nursery.cancel_scope.cancel()


async def test_world_events_over_the_wire(client: Client, server: Server) -> None:
    chat_id = await make_chat(client)
    await client.ask("open_chat", chat_id=chat_id)
    artifacts = {"acquired_objects": [{"holder_id": "you", "name": "storm lantern"}]}
    made = await client.ask(
        "create_world_event", chat_id=chat_id, title="The storm", artifacts=artifacts
    )
    assert made["type"] == "ok"
    event = await client.until("world_event")
    assert event["title"] == "The storm" and event["status"] == "planned"
    stranger = {"acquired_objects": [{"holder_id": "ghost", "name": "x"}]}
    refused = await client.ask(
        "create_world_event", chat_id=chat_id, title="Odd", artifacts=stranger
    )
    assert refused["code"] == "invalid" and "ghost" in refused["message"]


async def test_chat_state_lists_the_world_events(client: Client) -> None:
    chat_id = await make_chat(client)
    await client.ask("create_world_event", chat_id=chat_id, title="The festival")
    state = await client.ask("open_chat", chat_id=chat_id)
    assert [(e["title"], e["status"]) for e in state["world_events"]] == [
        ("The festival", "planned")
    ]
