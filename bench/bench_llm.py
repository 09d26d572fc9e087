"""The openai backend's reading of a stream, and the embedded model's speed.

1. Per-token cost of reading server-sent events with httpx-sse, and with the
   backend's own splitter (``llm/_sse.py``, over the response's bytes),
   against a hand-rolled line reader (the baseline), all against the
   loopback test server at full speed. At full speed many events share a
   read; a real model's stream is one read per token, where the splitter
   pays off (docs/performance.md). Under load (a compiler on both cores)
   httpx-sse measured up to 1.5x, so run this with the machine otherwise idle.
2. The embedded Gemma 3 270M: time to first token and tokens per second.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import trio
from httpx_sse import aconnect_sse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _report import report  # noqa: E402

from llm import LocalBackend, Message, ModelSettings, NarrativeRequest  # noqa: E402
from llm._sse import EventSplitter  # noqa: E402
from tests.support.openai_server import run_openai_server  # noqa: E402

TOKENS = 5000
ROUNDS = 5
BODY = {"model": "bench", "stream": True, "messages": [{"role": "user", "content": "go"}]}


async def sse_data(lines: AsyncIterator[str]) -> AsyncIterator[str]:
    """A hand-rolled reader: the ``data`` of each event, multi-line data joined."""
    data: list[str] = []
    async for line in lines:
        if not line:
            if data:
                yield "\n".join(data)
                data = []
        elif line.startswith("data:"):
            value = line[5:]
            data.append(value[1:] if value.startswith(" ") else value)
    if data:
        yield "\n".join(data)


async def with_httpx_sse(client: httpx.AsyncClient) -> int:
    count = 0
    async with aconnect_sse(client, "POST", "chat/completions", json=BODY) as source:
        async for event in source.aiter_sse():
            if event.data == "[DONE]":
                break
            chunk = json.loads(event.data)
            for choice in chunk.get("choices") or []:
                if (choice.get("delta") or {}).get("content"):
                    count += 1
    return count


async def with_splitter(client: httpx.AsyncClient) -> int:
    count = 0
    splitter = EventSplitter()
    async with client.stream("POST", "chat/completions", json=BODY) as response:
        async for piece in response.aiter_bytes():
            for data in splitter.feed(piece):
                if data == "[DONE]":
                    return count
                chunk = json.loads(data)
                for choice in chunk.get("choices") or []:
                    if (choice.get("delta") or {}).get("content"):
                        count += 1
    return count


async def by_hand(client: httpx.AsyncClient) -> int:
    count = 0
    async with client.stream("POST", "chat/completions", json=BODY) as response:
        async for data in sse_data(response.aiter_lines()):
            if data == "[DONE]":
                break
            chunk = json.loads(data)
            for choice in chunk.get("choices") or []:
                if (choice.get("delta") or {}).get("content"):
                    count += 1
    return count


async def per_token(reader, client: httpx.AsyncClient) -> float:  # type: ignore[no-untyped-def]
    best = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        count = await reader(client)
        best.append((time.perf_counter() - start) / count)
    return min(best)


async def local_model() -> dict[str, float]:
    with tempfile.TemporaryDirectory() as cache:
        model = LocalBackend(ModelSettings(cache_dir=cache, context=1024))
        await model.model()
        request = NarrativeRequest(
            (Message("system", "Mira keeps the bar."), Message("user", "Tell me a story.", "Ana")),
            speaker="Mira",
            max_tokens=64,
            temperature=0.0,
        )
        firsts, rates = [], []
        for _ in range(3):
            start = time.perf_counter()
            first = None
            count = 0
            async with model.stream(request) as chunks:
                async for _text in chunks:
                    count += 1
                    first = first or time.perf_counter() - start
            firsts.append(first or 0.0)
            rates.append(count / (time.perf_counter() - start))
        await model.aclose()
    return {"ttft_s": statistics.median(firsts), "tokens_per_second": statistics.median(rates)}


async def main() -> None:
    async with run_openai_server() as server:
        server.script.text = " ".join(["word"] * TOKENS)
        server.script.usage_chunk = False
        async with httpx.AsyncClient(base_url=server.url + "/") as client:
            await by_hand(client)  # warm up
            hand = await per_token(by_hand, client)
            sse = await per_token(with_httpx_sse, client)
            split = await per_token(with_splitter, client)
    local = await local_model()
    ratio = sse / hand
    report(
        "llm",
        [
            ("hand-rolled SSE reader, per token (baseline)", f"{hand * 1e6:.1f} µs"),
            ("httpx-sse reader, per token", f"{sse * 1e6:.1f} µs ({ratio:.2f}x)"),
            ("the backend's splitter, per token", f"{split * 1e6:.1f} µs ({split / hand:.2f}x)"),
            ("embedded model: time to first token", f"{local['ttft_s'] * 1000:.0f} ms"),
            ("embedded model: tokens per second", f"{local['tokens_per_second']:.1f}"),
        ],
        {
            "hand_us_per_token": hand * 1e6,
            "httpx_sse_us_per_token": sse * 1e6,
            "httpx_sse_ratio": ratio,
            "httpx_sse_within_5_percent": ratio <= 1.05,
            "splitter_us_per_token": split * 1e6,
            "splitter_ratio": split / hand,
            "local": local,
        },
    )


if __name__ == "__main__":
    trio.run(main)
