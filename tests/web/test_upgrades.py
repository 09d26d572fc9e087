"""WebSocket upgrades over real sockets: bad ones refused and forgotten, good ones capped."""

from __future__ import annotations

import base64
from contextlib import AsyncExitStack
from pathlib import Path

import pytest
import trio
import trio.testing
from gateway_kit import TOKEN, Client, Server, http_get, open_server
from trio_websocket import HandshakeError, open_websocket_url

KEY = base64.b64encode(b"sixteen  bytes!!").decode()
# Refused even by trio-websocket, which then kept each one's task and buffers.
REFUSED = [{"Sec-WebSocket-Key": None}, {"Sec-WebSocket-Version": "12"}]


def upgrade(port: int, **changes: str | None) -> tuple[tuple[str, str], ...]:
    """The headers of a good upgrade to /ws, with ``changes`` (None drops a header)."""
    fields: dict[str, str | None] = {
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": KEY,
        "Sec-WebSocket-Version": "13",
        **changes,
    }
    return tuple((name, value) for name, value in fields.items() if value is not None)


async def handshake(port: int, headers: tuple[tuple[str, str], ...]) -> tuple[int, dict[str, str]]:
    """Send an upgrade head over a plain socket; the status and headers of the answer."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    lines = [f"GET /ws?token={TOKEN} HTTP/1.1", f"Host: 127.0.0.1:{port}"]
    lines += [f"{name}: {value}" for name, value in headers]
    await stream.send_all(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
    data = b""
    with trio.fail_after(10):
        while b"\r\n\r\n" not in data:
            chunk = await stream.receive_some(65536)
            if not chunk:
                break
            data += chunk
    await stream.aclose()
    head = data.partition(b"\r\n\r\n")[0].decode("latin-1")
    status_line, *header_lines = head.split("\r\n")
    fields = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        fields[name.strip().lower()] = value.strip()
    return int(status_line.split(" ")[1]), fields


async def settled_tasks() -> int:
    """How many tasks live once every task is waiting (finished handlers are gone)."""
    await trio.testing.wait_all_tasks_blocked()
    return trio.lowlevel.current_statistics().tasks_living


async def test_bad_upgrades_are_refused_and_leave_nothing_behind(server: Server) -> None:
    assert (await handshake(server.port, upgrade(server.port)))[0] == 101  # the helper works
    tasks = await settled_tasks()
    for _ in range(50):
        for changes in REFUSED:
            status, _ = await handshake(server.port, upgrade(server.port, **changes))
            assert status in (400, 426)
    assert await settled_tasks() == tasks
    figures = server.gateway.statistics()
    assert (figures.connections, figures.clients, figures.pending) == (0, 0, 0)
    assert figures.refused == {"400": 50, "426": 50}


@pytest.mark.parametrize(
    "key",
    [
        "",
        " ",
        "abc",
        "!" * 24,
        base64.b64encode(b"15 bytes only!!").decode(),
        base64.b64encode(b"seventeen bytes!!").decode(),
        KEY.rstrip("="),  # no padding
        KEY[:-3] + "*==",
        f"{KEY}, {KEY}",  # two keys
    ],
)
async def test_a_malformed_key_is_refused_with_400(server: Server, key: str) -> None:
    status, _ = await handshake(server.port, upgrade(server.port, **{"Sec-WebSocket-Key": key}))
    assert status == 400
    assert server.gateway.accepted == 0


@pytest.mark.parametrize(
    ("changes", "status"),
    [
        ({"Sec-WebSocket-Version": "12"}, 426),
        ({"Sec-WebSocket-Version": "14"}, 426),
        ({"Sec-WebSocket-Version": None}, 400),
        ({"Upgrade": "websocket, h2c"}, 400),
        ({"Connection": "keep-alive"}, 426),  # not an upgrade: /ws is WebSocket only
    ],
)
async def test_a_wrong_version_or_upgrade_is_refused(
    server: Server, changes: dict[str, str | None], status: int
) -> None:
    got, headers = await handshake(server.port, upgrade(server.port, **changes))
    assert got == status
    if "Sec-WebSocket-Version" in changes:
        assert headers["sec-websocket-version"] == "13"
    assert server.gateway.accepted == 0


async def test_past_max_clients_an_upgrade_gets_503_and_http_still_answers(
    tmp_path: Path,
) -> None:
    async with open_server(tmp_path, max_clients=5) as server, AsyncExitStack() as open_ones:
        clients = []
        for _ in range(5):
            ws = await open_ones.enter_async_context(open_websocket_url(server.url))
            clients.append(Client(ws))
        with pytest.raises(HandshakeError) as info:
            async with open_websocket_url(server.url):
                pass
        assert getattr(info.value, "status_code", None) == 503
        status, _, body = await http_get(server.port, "/healthz")
        assert (status, body) == (200, b"ok")
        assert (await clients[4].ask("list_bots"))["type"] == "bots"  # the five go on
        await clients.pop().ws.aclose()
        await settled_tasks()  # the server has seen it go
        assert server.gateway.statistics().clients == 4
        async with open_websocket_url(server.url) as ws:
            assert (await Client(ws).ask("hello", protocol=1))["type"] == "welcome"
        assert server.gateway.refused[503] == 1


async def test_past_max_pending_a_socket_gets_503_unread(tmp_path: Path) -> None:
    async with open_server(tmp_path, max_pending=2) as server:
        silent = [await trio.open_tcp_stream("127.0.0.1", server.port) for _ in range(2)]
        await settled_tasks()  # both are being read
        status, _, _ = await http_get(server.port, "/healthz")
        assert status == 503
        for stream in silent:
            await stream.aclose()
        await settled_tasks()
        status, _, body = await http_get(server.port, "/healthz")
        assert (status, body) == (200, b"ok")
