"""Load for the gateway benchmarks: a model server, a bare baseline server, and the clients.

Every part runs in a process of its own, so that the server under test pays
only for serving: ``python bench/_load.py model|raw|clients ...``. The
orchestrating benchmark starts them with :func:`start` and reads the one
JSON line each prints.

- ``model``: the project's OpenAI-compatible test server streaming one long
  reply at a set rate (tokens a second, per request).
- ``raw``: a bare trio-websocket server that speaks just enough of the
  protocol for the clients below, and streams each chat's reply as the very
  frames the gateway would send (the same JSON bytes, one token a frame) at
  the same rate: the baseline. With ``--model-url`` it reads each reply from
  the model server instead, with a plain httpx client (its lines, a JSON
  chunk each), and sends each token's frame as it arrives: the same frames,
  and the same model stream read, as the gateway's.
- ``clients``: N chats, each watched by K WebSocket connections. Each chat
  gets a bot with a real persona and greeting; once every watcher has its
  ``chat_state``, each chat sends one turn (spread over a second), and every
  watcher times each token frame until the beat completes. Meanwhile it
  reads the server process's CPU time from ``/proc``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import trio
import wsproto
import wsproto.events as wse

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "bench"
PERSONA = (
    "Mira keeps the bar at the Gilded Eel, a harbour tavern that smells of tar and rain. "
    "She is forty, sharp-eyed, and remembers every debt and every face; she speaks plainly, "
    "teases regulars, and goes quiet when the harbour watch comes in. She lost a brother "
    "to the sea and keeps his brass compass behind the bar. She trades in rumours more "
    "than ale, and she never lets a stranger see what she is thinking. "
) * 2
GREETING = "Rain's coming in. Sit by the fire if you want, but you'll pay for the wood."
PROSE = (
    '*I slide a brass key across the bar and lean in.* "Recognise this? Found it on the docks."'
)
_WORD = re.compile(r"\s*\S+")


def story(words: int) -> str:
    """The reply the model streams: ``words`` word tokens, one per chunk."""
    vocabulary = [
        "the",
        "rain",
        "on",
        "the",
        "harbour",
        "glass",
        "runs",
        "like",
        "old",
        "silver",
        "and",
        "nobody",
        "speaks",
    ]
    return " ".join(vocabulary[i % len(vocabulary)] for i in range(words))


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values`` by nearest rank; 0 when empty."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(len(ordered) * q + 0.5) - 1))]


def start(args: list[str], env: dict[str, str] | None = None) -> tuple[subprocess.Popen[str], Any]:
    """Start ``bench/_load.py ARGS`` and read the JSON line it prints when ready."""
    process = subprocess.Popen(
        [sys.executable, str(Path(__file__)), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line:
        process.wait(10)
        raise RuntimeError(f"{args[0]} did not start (exit {process.returncode})")
    return process, json.loads(line)


def stop(process: subprocess.Popen[Any]) -> None:
    """Ask a part to stop, and kill it if it does not within ten seconds."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def serve_tree(
    tree: Path, data: Path, backend: list[str], env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[str], int]:
    """``troupe serve`` from the source tree ``tree`` on ``data`` with ``backend``'s flags; its
    port, once the server says it is ready (its log goes to ``data/serve.log``)."""
    port = free_port()
    environ = {**os.environ, "PYTHONPATH": str(tree), **(env or {})}
    environ.pop("TROUPE_TOKEN", None)
    process = subprocess.Popen(
        [
            sys.executable,
            *("-m", "troupe", "serve", "--port", str(port), "--data", str(data)),
            *("--token", TOKEN),
            *backend,
        ],
        cwd=tree,
        stdout=subprocess.PIPE,
        stderr=(data / "serve.log").open("w"),
        text=True,
        env=environ,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if "ready" not in line and "http" not in line:  # the previous release printed the address
        stop(process)
        raise RuntimeError(f"troupe serve did not start: {line!r}; see {data / 'serve.log'}")
    return process, port


def start_troupe(
    model_url: str, data: Path, pythonpath: Path
) -> tuple[subprocess.Popen[str], int]:
    """``troupe serve`` from the tree at ``pythonpath``, on the model server; its port."""
    backend = ["--backend", "openai", "--base-url", model_url, "--model", "bench-model"]
    return serve_tree(
        pythonpath,
        data,
        [*backend, "--max-connections", "4096"],
        {"TROUPE_MAX_CLIENTS": "4096"},
    )


def measure(
    server: str,
    chats: int,
    *,
    watchers: int = 4,
    rate: float = 20.0,
    words: int = 160,
    tree: Path = ROOT,
    data: Path,
) -> dict[str, Any]:
    """One load run: ``server`` is ``"raw"`` (the baseline), ``"raw_model"`` (the baseline
    reading each reply from the model server) or ``"troupe"`` (``troupe serve`` from the
    source tree ``tree``); the model server runs in a process of its own."""
    parts: list[subprocess.Popen[Any]] = []
    try:
        if server == "raw":
            process, ready = start(["raw", "--rate", str(rate), "--words", str(words)])
            parts.append(process)
            port = ready["port"]
        elif server == "raw_model":
            model, ready = start(["model", "--rate", str(rate), "--words", str(words)])
            parts.append(model)
            reader = ["--model-url", ready["url"]]
            process, ready = start(["raw", "--rate", str(rate), "--words", str(words), *reader])
            parts.append(process)
            port = ready["port"]
        else:
            model, ready = start(["model", "--rate", str(rate), "--words", str(words)])
            parts.append(model)
            data.mkdir(parents=True, exist_ok=True)
            process, port = start_troupe(ready["url"], data, tree)
            parts.append(process)
        limit = words / rate * 3 + 30
        _, result = start(
            [
                "clients",
                "--port",
                str(port),
                "--chats",
                str(chats),
                "--watchers",
                str(watchers),
                "--server-pid",
                str(process.pid),
                "--limit",
                str(limit),
            ]
        )
        return dict(result)
    finally:
        for part in reversed(parts):
            stop(part)


PREVIOUS_RELEASE = "3157d21"
"""The commit of the previous release: the benchmarks' baseline tree by default."""


def tree_at(revision: str, folder: Path) -> Path:
    """A source tree to run: ``revision`` itself when it is a folder, else that git
    revision of this repository unpacked into ``folder``."""
    if Path(revision).is_dir():
        return Path(revision)
    folder.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", revision], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


def trees(argv: list[str] | None, folder: Path) -> dict[str, Path]:
    """The trees a benchmark compares: ``--before REV`` (default the previous release;
    ``none`` for this tree alone) as ``troupe_before``, and this one as ``troupe``."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--before", default=PREVIOUS_RELEASE, help="git revision or source folder")
    args = parser.parse_args(argv)
    if args.before == "none":
        return {"troupe": ROOT}
    return {"troupe_before": tree_at(args.before, folder / "before"), "troupe": ROOT}


# --- the model server ---


async def run_model(rate: float, words: int) -> None:
    sys.path.insert(0, str(ROOT))
    from tests.support.openai_server import run_openai_server

    async with run_openai_server() as server:
        server.script.text = story(words)
        server.script.rate = rate
        server.script.usage_chunk = False
        print(json.dumps({"url": server.url}), flush=True)
        await trio.sleep_forever()


# --- the baseline: bare trio-websocket, the gateway's frames ---


async def run_raw(rate: float, words: int, model_url: str | None) -> None:
    from trio_websocket import ConnectionClosed, WebSocketRequest, serve_websocket

    client = None
    if model_url is not None:
        limits = httpx.Limits(max_connections=4096)
        client = httpx.AsyncClient(base_url=model_url + "/", limits=limits, timeout=60)

    tokens = [w if i == 0 else " " + w for i, w in enumerate(story(words).split(" "))]
    watchers: dict[str, list[Any]] = {}
    numbers = itertools.count(1)

    async def paced() -> AsyncIterator[str]:
        for text in tokens:
            await trio.sleep(1 / rate)
            yield text

    async def read(client: httpx.AsyncClient) -> AsyncIterator[str]:
        # The plain way to read a stream with httpx: its lines, one JSON chunk each.
        body = {"model": "bench", "stream": True, "messages": [{"role": "user", "content": "go"}]}
        async with client.stream("POST", "chat/completions", json=body) as response:
            async for line in response.aiter_lines():
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                for choice in json.loads(line[6:]).get("choices") or []:
                    text = (choice.get("delta") or {}).get("content")
                    if text:
                        yield text

    async def stream(chat_id: str, speaker: str) -> None:
        offset = 0
        texts = read(client) if client is not None else paced()
        async for text in texts:
            frame = json.dumps(
                {
                    "type": "token",
                    "chat_id": chat_id,
                    "beat_id": 2,
                    "speaker_id": speaker,
                    "offset": offset,
                    "text": text,
                },
                ensure_ascii=False,
            )
            offset += len(text)
            for ws in watchers[chat_id]:
                await ws.send_message(frame)
        done = json.dumps({"type": "beat_complete", "chat_id": chat_id, "beat_id": 2, "seq": 3})
        for ws in watchers[chat_id]:
            await ws.send_message(done)

    async def handler(request: WebSocketRequest) -> None:
        ws = await request.accept()
        try:
            while True:
                message = json.loads(await ws.get_message())
                kind, reply = message["type"], message.get("id")
                if kind == "create_bot":
                    answer = {"type": "bot", "bot": {"id": f"b{next(numbers)}"}}
                elif kind == "create_chat":
                    chat_id = f"c{next(numbers)}"
                    watchers[chat_id] = []
                    answer = {"type": "chat", "chat": {"id": chat_id}}
                elif kind == "open_chat":
                    watchers[message["chat_id"]].append(ws)
                    answer = {"type": "chat_state", "chat_id": message["chat_id"]}
                elif kind == "send_turn":
                    nursery.start_soon(stream, message["chat_id"], "mira")
                    answer = {"type": "accepted", "chat_id": message["chat_id"]}
                else:
                    answer = {"type": "error", "code": "unknown_type"}
                await ws.send_message(json.dumps({**answer, "reply_to": reply}))
        except ConnectionClosed:
            return

    async with trio.open_nursery() as nursery:
        server = await nursery.start(serve_websocket, handler, "127.0.0.1", 0, None)
        print(json.dumps({"port": server.port}), flush=True)


# --- the clients ---


class Client:
    """One WebSocket connection over wsproto: cheap, so the clients cost the machine little."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.ws = wsproto.WSConnection(wsproto.ConnectionType.CLIENT)
        self.parts: list[str] = []
        self.pending: list[tuple[str, float]] = []

    @classmethod
    async def connect(cls, port: int) -> Client:
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        client = cls(stream)
        target = f"/ws?token={TOKEN}"
        await stream.send_all(client.ws.send(wse.Request(host=f"127.0.0.1:{port}", target=target)))
        while True:
            data = await stream.receive_some(65536)
            if not data:
                raise ConnectionError("the server closed during the handshake")
            client.ws.receive_data(data)
            for event in client.ws.events():
                if isinstance(event, wse.AcceptConnection):
                    return client
                if isinstance(event, wse.RejectConnection):
                    raise ConnectionError(f"upgrade refused: {event.status_code}")

    async def send(self, message: dict[str, Any]) -> None:
        await self.stream.send_all(self.ws.send(wse.Message(data=json.dumps(message))))

    async def receive(self) -> list[tuple[str, float]]:
        """The next whole frames, each with the time its bytes arrived."""
        while not self.pending:
            data = await self.stream.receive_some(65536)
            now = time.perf_counter()
            if not data:
                raise ConnectionError("the server closed the connection")
            self.ws.receive_data(data)
            for event in self.ws.events():
                if isinstance(event, wse.TextMessage):
                    self.parts.append(event.data)
                    if event.message_finished:
                        self.pending.append(("".join(self.parts), now))
                        self.parts = []
                elif isinstance(event, wse.Ping):
                    await self.stream.send_all(self.ws.send(event.response()))
                elif isinstance(event, wse.CloseConnection):
                    raise ConnectionError("the server closed the connection")
        frames, self.pending = self.pending, []
        return frames

    async def answer(self, message: dict[str, Any]) -> dict[str, Any]:
        """Send a command and wait for its direct answer (skipping anything else)."""
        await self.send(message)
        while True:
            for frame, _ in await self.receive():
                data = json.loads(frame)
                if data.get("reply_to") == message["id"]:
                    if data["type"] == "error":
                        raise RuntimeError(f"{message['type']} refused: {data}")
                    return data


class Figures:
    """What the watchers saw."""

    def __init__(self) -> None:
        self.gaps: list[float] = []
        self.first: list[float] = []
        self.frames = 0
        self.token_frames = 0
        self.tokens = 0
        self.incomplete = 0


async def watch(
    client: Client, sent: dict[str, float], chat_id: str, figures: Figures, deadline: float
) -> None:
    last: float | None = None
    with trio.move_on_at(deadline) as bounded:
        while True:
            for frame, now in await client.receive():
                figures.frames += 1
                data = json.loads(frame)
                kind = data["type"]
                if kind == "token":
                    figures.token_frames += 1
                    figures.tokens += len(_WORD.findall(data["text"]))
                    if last is None:
                        figures.first.append(now - sent[chat_id])
                    else:
                        figures.gaps.append(now - last)
                    last = now
                elif kind == "beat_complete":
                    return
    if bounded.cancelled_caught:
        figures.incomplete += 1


async def run_clients(port: int, chats: int, watchers: int, server_pid: int, limit: float) -> None:
    figures = Figures()
    setup = trio.Semaphore(16)
    opened: list[tuple[str, list[Client]]] = []
    ids = itertools.count(1)

    async def prepare(n: int) -> None:
        async with setup:
            control = await Client.connect(port)
            bot = await control.answer(
                {
                    "type": "create_bot",
                    "id": str(next(ids)),
                    "name": f"Mira {n}",
                    "persona": PERSONA,
                    "greeting": GREETING,
                }
            )
            chat = await control.answer(
                {
                    "type": "create_chat",
                    "id": str(next(ids)),
                    "host_bot_id": bot["bot"]["id"],
                    "location": "The Gilded Eel",
                }
            )
            chat_id = chat["chat"]["id"]
            clients = [control] + [await Client.connect(port) for _ in range(watchers - 1)]
            for client in clients:
                await client.answer(
                    {"type": "open_chat", "id": str(next(ids)), "chat_id": chat_id}
                )
            opened.append((chat_id, clients))

    with trio.fail_after(120):
        async with trio.open_nursery() as nursery:
            for n in range(chats):
                nursery.start_soon(prepare, n)

    sent: dict[str, float] = {}
    deadline = trio.current_time() + limit
    cpu_before = cpu_seconds(server_pid)
    start = time.perf_counter()

    async def turn(index: int, chat_id: str, control: Client) -> None:
        # Spread the sends over a second, as people would, not all in one tick.
        await trio.sleep(index / len(opened))
        sent[chat_id] = time.perf_counter()
        await control.send(
            {"type": "send_turn", "id": f"t{index}", "chat_id": chat_id, "prose": PROSE}
        )

    async with trio.open_nursery() as nursery:
        for index, (chat_id, clients) in enumerate(opened):
            nursery.start_soon(turn, index, chat_id, clients[0])
            for client in clients:
                nursery.start_soon(watch, client, sent, chat_id, figures, deadline)
    elapsed = time.perf_counter() - start
    cpu = cpu_seconds(server_pid) - cpu_before
    for _, clients in opened:
        for client in clients:
            await client.stream.aclose()
    gaps = [g * 1000 for g in figures.gaps]
    first = [f * 1000 for f in figures.first]
    result = {
        "chats": chats,
        "watchers": watchers,
        "seconds": elapsed,
        "frames": figures.frames,
        "token_frames": figures.token_frames,
        "tokens": figures.tokens,
        "tokens_per_frame": figures.tokens / max(1, figures.token_frames),
        "frames_per_second": figures.frames / elapsed,
        "server_cpu_seconds": cpu,
        "server_cpu_us_per_frame": cpu / max(1, figures.frames) * 1e6,
        "gap_p50_ms": statistics.median(gaps) if gaps else 0.0,
        "gap_p99_ms": percentile(gaps, 0.99),
        "gap_max_ms": max(gaps, default=0.0),
        "first_token_p50_ms": statistics.median(first) if first else 0.0,
        "first_token_p99_ms": percentile(first, 0.99),
        "incomplete_watchers": figures.incomplete,
    }
    print(json.dumps(result), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parts = parser.add_subparsers(dest="part", required=True)
    for name in ("model", "raw"):
        part = parts.add_parser(name)
        part.add_argument("--rate", type=float, required=True)
        part.add_argument("--words", type=int, required=True)
    parts.choices["raw"].add_argument("--model-url", help="read each reply from this server")
    clients = parts.add_parser("clients")
    clients.add_argument("--port", type=int, required=True)
    clients.add_argument("--chats", type=int, required=True)
    clients.add_argument("--watchers", type=int, default=4)
    clients.add_argument("--server-pid", type=int, required=True)
    clients.add_argument("--limit", type=float, default=60.0, help="seconds the load may take")
    args = parser.parse_args()
    if args.part == "model":
        trio.run(run_model, args.rate, args.words)
    elif args.part == "raw":
        trio.run(run_raw, args.rate, args.words, args.model_url)
    else:
        trio.run(run_clients, args.port, args.chats, args.watchers, args.server_pid, args.limit)


if __name__ == "__main__":
    main()
