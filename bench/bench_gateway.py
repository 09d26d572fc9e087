"""Gateway throughput and latency, against raw trio-websocket frames in the same run.

1. Baseline: a bare trio-websocket server sends one frame per token to one
   client; frames per second received.
2. Gateway: N chats x K subscribers; every chat streams a long scripted beat
   at full speed; tokens per second delivered to all subscribers (the gateway
   may merge tokens, so it can beat one-frame-per-token).
3. Latency: 100 chats streaming at once at a steady rate, one subscriber
   each; p50/p99 from the backend yielding a token to a client receiving it.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import trio
from trio_websocket import open_websocket_url, serve_websocket

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _report import report

from actors import EngineSettings, open_engine
from llm import NarrativeRequest, ScriptedBackend, split_tokens
from web import Gateway, GatewaySettings

TOKEN = "bench"
WORDS = 2000


def story(n: int, seed: int) -> str:
    return " ".join(f"w{seed}x{i}" for i in range(n))


async def raw_frames_per_second(frames: int) -> float:
    payload = json.dumps({"type": "token", "text": " word", "offset": 0})

    async def handler(request: Any) -> None:
        ws = await request.accept()
        for _ in range(frames):
            await ws.send_message(payload)
        await ws.aclose()

    async with trio.open_nursery() as nursery:
        server = await nursery.start(serve_websocket, handler, "127.0.0.1", 0, None)
        port = server.port
        start = time.perf_counter()
        received = 0
        async with open_websocket_url(f"ws://127.0.0.1:{port}/") as ws:
            while received < frames:
                await ws.get_message()
                received += 1
        elapsed = time.perf_counter() - start
        nursery.cancel_scope.cancel()
    return frames / elapsed


class Timed(ScriptedBackend):
    """Records when each token of each speaker's beat is yielded."""

    def __init__(self) -> None:
        super().__init__()
        self.yielded: dict[str, list[tuple[int, float]]] = {}

    @asynccontextmanager
    async def stream(self, request: NarrativeRequest) -> AsyncIterator[AsyncIterator[str]]:
        async with super().stream(request) as chunks:
            log = self.yielded.setdefault(request.speaker, [])

            async def timed() -> AsyncIterator[str]:
                end = 0
                async for text in chunks:
                    end += len(text)
                    log.append((end, time.perf_counter()))
                    yield text

            yield timed()


@asynccontextmanager
async def running(backend: ScriptedBackend, tmp: Path) -> AsyncIterator[tuple[Any, int]]:
    settings = EngineSettings(db_path=tmp / "bench.db", data_dir=tmp, classifier_timeout=5)
    async with open_engine(settings, narrative=backend, classifier=backend) as engine:
        gateway = Gateway(engine, GatewaySettings(token=TOKEN, port=0, rate=1e6, burst=10**6))
        async with trio.open_nursery() as nursery:
            port = await nursery.start(gateway.run)
            yield engine, port
            nursery.cancel_scope.cancel()


async def subscriber(port: int, chat_id: str, ready: trio.Event | None, sink: list[Any]) -> None:
    async with open_websocket_url(f"ws://127.0.0.1:{port}/ws?token={TOKEN}") as ws:
        await ws.send_message(json.dumps({"type": "open_chat", "chat_id": chat_id}))
        await ws.get_message()  # chat_state
        if ready is not None:
            ready.set()
        while True:
            message = json.loads(await ws.get_message())
            now = time.perf_counter()
            if message["type"] == "token":
                sink.append((chat_id, message["offset"], len(message["text"]), now))
            elif message["type"] == "beat_complete":
                return


async def gateway_tokens_per_second(chats: int, subscribers: int, tmp: Path) -> dict[str, float]:
    backend = ScriptedBackend()
    async with running(backend, tmp) as (engine, port):
        ids = []
        for n in range(chats):
            bot = await engine.create_bot(f"Bot{n}", "bench", "")
            ids.append((await engine.create_chat(bot.id)).id)
            backend.push_narrative(story(WORDS, n), match=f"Bot{n}")
        sink: list[Any] = []
        async with trio.open_nursery() as nursery:
            readies = []
            for chat_id in ids:
                for _ in range(subscribers):
                    ready = trio.Event()
                    readies.append(ready)
                    nursery.start_soon(subscriber, port, chat_id, ready, sink)
            for ready in readies:
                await ready.wait()
            start = time.perf_counter()
            for chat_id in ids:
                await engine.send_turn(chat_id, "Go on.")
        elapsed = time.perf_counter() - start
        tokens = chats * subscribers * len(split_tokens(story(WORDS, 0)))
        for chat_id in ids:
            await engine.wait_settled(chat_id)
    return {"tokens_per_second": tokens / elapsed, "frames": len(sink), "tokens": tokens}


async def latency(chats: int, tokens: int, delay: float, tmp: Path) -> dict[str, float]:
    backend = Timed()
    async with running(backend, tmp) as (engine, port):
        ids = {}
        for n in range(chats):
            bot = await engine.create_bot(f"Bot{n}", "bench", "")
            ids[(await engine.create_chat(bot.id)).id] = bot.name
            backend.push_narrative(story(tokens, n), match=f"Bot{n}", delay=delay)
        sink: list[Any] = []
        async with trio.open_nursery() as nursery:
            readies = []
            for chat_id in ids:
                ready = trio.Event()
                readies.append(ready)
                nursery.start_soon(subscriber, port, chat_id, ready, sink)
            for ready in readies:
                await ready.wait()
            for chat_id in ids:
                await engine.send_turn(chat_id, "Go on.")
        samples = []
        for chat_id, offset, length, received in sink:
            for end, sent in backend.yielded[ids[chat_id]]:
                if offset < end <= offset + length:
                    samples.append((received - sent) * 1000)
        for chat_id in ids:
            await engine.wait_settled(chat_id)
    samples.sort()
    return {
        "p50_ms": statistics.median(samples),
        "p99_ms": samples[int(len(samples) * 0.99) - 1],
        "samples": len(samples),
    }


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        raw = await raw_frames_per_second(20_000)
        through = {}
        for chats, subscribers in ((1, 1), (10, 3), (20, 5)):
            folder = Path(tmp) / f"t{chats}x{subscribers}"
            folder.mkdir()
            through[f"{chats}x{subscribers}"] = await gateway_tokens_per_second(
                chats, subscribers, folder
            )
        folder = Path(tmp) / "latency"
        folder.mkdir()
        lag = await latency(100, 60, 0.02, folder)
    rows = [("raw trio-websocket frames/s (baseline)", f"{raw:,.0f}")]
    for key, figures in through.items():
        rate = figures["tokens_per_second"]
        rows.append(
            (f"gateway tokens/s, {key} chats x subscribers", f"{rate:,.0f}  ({rate / raw:.2f}x)")
        )
    rows.append(("token latency, 100 chats streaming: p50", f"{lag['p50_ms']:.1f} ms"))
    rows.append(("token latency, 100 chats streaming: p99", f"{lag['p99_ms']:.1f} ms"))
    report(
        "gateway",
        rows,
        {
            "raw_frames_per_second": raw,
            "gateway": {
                key: {**figures, "ratio_to_raw": figures["tokens_per_second"] / raw}
                for key, figures in through.items()
            },
            "latency_100_chats": lag,
            "target": "tokens/s ratio >= 1.0",
        },
    )


if __name__ == "__main__":
    trio.run(main)
