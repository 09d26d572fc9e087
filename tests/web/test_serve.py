"""``troupe serve`` as a real process: the port, the token file, and stopping on SIGTERM."""

from __future__ import annotations

import json
import os
import re
import resource
import signal
import socket
import stat
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import attrs
import pytest
import trio
from gateway_kit import Client
from trio_websocket import ConnectionClosed, open_websocket_url

from troupe.__main__ import build_parser
from troupe._config import ConfigError, build_config, load_token
from troupe._serve import client_cap

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "serve-token"
# Every beat streams two tokens and then hangs until it is stopped.
STALLING = """
[[narrative]]
text = "The tide turns and the lamps gutter one by one."
stall_after = 2
keep = true
"""


def serve_command(data: Path, script: Path, *flags: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "troupe",
        "serve",
        "--data",
        str(data),
        "--token",
        TOKEN,
        "--backend",
        "scripted",
        "--script",
        str(script),
        *flags,
    ]


@attrs.define
class Serving:
    process: trio.Process
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws?token={TOKEN}"

    async def stop(self) -> int:
        """SIGTERM, then the exit status (a hang past 20 s fails the test)."""
        self.process.send_signal(signal.SIGTERM)
        with trio.fail_after(20):
            return await self.process.wait()


@asynccontextmanager
async def troupe_serve(
    tmp_path: Path, files: tuple[int, int] | None = None
) -> AsyncIterator[Serving]:
    """A ``troupe serve`` process on a free port whose model stalls mid-beat.

    ``files`` sets its (soft, hard) limit on open files as it starts.
    """

    def limit_files() -> None:
        if files is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, files)

    script = tmp_path / "replies.toml"
    script.write_text(STALLING)
    log = tmp_path / "serve.log"
    with log.open("wb") as errors:
        process = await trio.lowlevel.open_process(
            serve_command(tmp_path / "data", script, "--port", "0"),
            stdout=subprocess.PIPE,
            stderr=errors,
            cwd=ROOT,
            preexec_fn=limit_files,
        )
    try:
        assert process.stdout is not None
        out = b""
        with trio.fail_after(30):
            while (found := re.search(rb"http://127\.0\.0\.1:(\d+)/", out)) is None:
                chunk = await process.stdout.receive_some(4096)
                assert chunk, f"troupe serve exited: {log.read_text()}"
                out += chunk
        yield Serving(process, int(found.group(1)), log)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


def test_a_busy_port_is_one_line_and_exit_1(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        script = tmp_path / "replies.toml"
        script.write_text(STALLING)
        done = subprocess.run(
            serve_command(tmp_path / "data", script, "--port", str(port)),
            capture_output=True,
            text=True,
            timeout=60,
            cwd=ROOT,
        )
    assert done.returncode == 1
    assert done.stderr.splitlines() == [f"troupe serve: port {port} is in use; pass --port"]
    assert done.stdout == ""


def test_the_token_file_is_private_from_the_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No chmod after the fact: the file must be made private, not made so later.
    monkeypatch.setattr(Path, "chmod", lambda *_args, **_kw: None)
    monkeypatch.setattr(os, "chmod", lambda *_args, **_kw: None)
    old = os.umask(0o022)
    try:
        token = load_token(tmp_path, None)
    finally:
        os.umask(old)
    path = tmp_path / "token"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text() == token + "\n"
    assert load_token(tmp_path, None) == token  # kept across restarts
    path.write_text("")
    renewed = load_token(tmp_path, None)
    assert renewed and renewed != token
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


async def test_sigterm_closes_every_client_with_1001(tmp_path: Path) -> None:
    async with troupe_serve(tmp_path) as serving, AsyncExitStack() as stack:
        clients = []
        for _ in range(3):
            ws = await stack.enter_async_context(open_websocket_url(serving.url))
            client = Client(ws)
            assert (await client.ask("hello", protocol=1))["type"] == "welcome"
            clients.append(client)
        started = trio.current_time()
        assert await serving.stop() == 0
        stopped_in = trio.current_time() - started
        for client in clients:
            with pytest.raises(ConnectionClosed) as info:
                await client.recv()
            assert info.value.reason.code == 1001
        assert "Traceback" not in serving.log.read_text()
        print(json.dumps({"sigterm_with_3_clients_exit_seconds": round(stopped_in, 2)}))


async def test_sigterm_with_20_beats_in_flight_commits_them_and_exits(tmp_path: Path) -> None:
    async with troupe_serve(tmp_path) as serving, AsyncExitStack() as stack:
        # Three connections, each within the rate limit's burst: one makes the
        # chats, one watches them, one sends the turns.
        maker, watcher, sender = [
            Client(await stack.enter_async_context(open_websocket_url(serving.url)))
            for _ in range(3)
        ]
        host = (await maker.ask("list_bots"))["bots"][0]["id"]
        chats = []
        for n in range(20):
            made = await maker.ask("create_chat", host_bot_id=host, title=f"c{n}")
            chats.append(made["chat"]["id"])
        for chat_id in chats:
            assert (await watcher.ask("open_chat", chat_id=chat_id))["type"] == "chat_state"
        for chat_id in chats:
            accepted = await sender.ask("send_turn", chat_id=chat_id, prose="Go")
            assert accepted["type"] == "accepted", accepted
        streaming: set[str] = set()
        while len(streaming) < len(chats):
            streaming.add((await watcher.until("token"))["chat_id"])
        complete: dict[str, dict[str, object]] = {}
        closed: list[int] = []

        async def read_to_the_close() -> None:
            # Read on while the server stops, as a browser would: a client that
            # stops reading cannot answer the close, and is dropped after a bound.
            try:
                while True:
                    message = await watcher.recv()
                    if message["type"] == "beat_complete":
                        complete[message["chat_id"]] = message
            except ConnectionClosed as exc:
                closed.append(exc.reason.code)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(read_to_the_close)
            started = trio.current_time()
            assert await serving.stop() == 0
            stopped_in = trio.current_time() - started
        assert closed == [1001]
        assert set(complete) == set(chats)
        assert all(m["truncated"] and m["error"] == "shutdown" for m in complete.values())
        print(json.dumps({"sigterm_with_20_beats_exit_seconds": round(stopped_in, 2)}))


async def test_serve_raises_its_open_file_limit_to_the_hard_one(tmp_path: Path) -> None:
    async with troupe_serve(tmp_path, files=(256, 4096)) as serving:
        limits = await trio.Path(f"/proc/{serving.process.pid}/limits").read_text()
        row = next(line for line in limits.splitlines() if line.startswith("Max open files"))
        assert row.split()[3:5] == ["4096", "4096"]
        assert await serving.stop() == 0


def test_the_client_cap_leaves_room_under_the_file_limit() -> None:
    assert client_cap(512, 64, None) == 512
    assert client_cap(512, 64, 65536) == 512
    assert client_cap(512, 64, 256) == 128  # 64 files for the rest, 64 for requests
    assert client_cap(512, 64, 100) == 1


@pytest.mark.parametrize(
    ("flags", "env", "expected"),
    [
        ([], {}, 512),
        (["--max-clients", "5"], {}, 5),
        ([], {"TROUPE_MAX_CLIENTS": "7"}, 7),
        (["--max-clients", "5"], {"TROUPE_MAX_CLIENTS": "7"}, 5),
    ],
)
def test_max_clients_comes_from_the_flag_or_the_environment(
    tmp_path: Path, flags: list[str], env: dict[str, str], expected: int
) -> None:
    args = build_parser().parse_args(["serve", "--data", str(tmp_path), "--token", "t", *flags])
    assert build_config(args, env).max_clients == expected


@pytest.mark.parametrize("value", ["0", "-3", "many"])
def test_a_bad_max_clients_is_refused(tmp_path: Path, value: str) -> None:
    args = build_parser().parse_args(["serve", "--data", str(tmp_path), "--token", "t"])
    with pytest.raises(ConfigError, match="max clients"):
        build_config(args, {"TROUPE_MAX_CLIENTS": value})
