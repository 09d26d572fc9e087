"""Benchmark of the Redis bus: a frame's trip from one node's publish to another node's subscriber.

Run: PYTHONPATH=. .venv/bin/python bench/bench_bus.py   (about half a minute;
starts its own redis-server on loopback; writes bench/results/bus.json)

Two buses (two nodes) in one process, on one redis-server over loopback:

- latency: one frame at a time, the time from ``publish`` to the
  subscriber holding it, p50 and p99; against, in the same run, a trio
  memory channel between two tasks (the in-process floor) and coredis'
  own client and pub/sub on the same server (Redis' floor, without the
  bus's outbox, batching and fan-out);
- throughput: a burst of frames published back to back, until the last
  is received (the outbox batches them), in frames per second, against
  the memory channel.

Frames are 64 bytes, about a token frame's size.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import coredis  # noqa: E402
import trio  # noqa: E402
from _report import report  # noqa: E402

from cluster import BusSettings, open_bus  # noqa: E402
from tests.support.servers import redis_server, redis_url  # noqa: E402

TRIPS = 3000
BURST = 20_000
FRAME = b"x" * 64

Trip = Callable[[bytes], Awaitable[None]]


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_us": round(statistics.median(ordered) * 1e6, 1),
        "p99_us": round(ordered[int(len(ordered) * 0.99) - 1] * 1e6, 1),
    }


async def time_trips(trip: Trip) -> list[float]:
    for _ in range(200):  # warm up
        await trip(FRAME)
    samples = []
    for _ in range(TRIPS):
        start = time.perf_counter()
        await trip(FRAME)
        samples.append(time.perf_counter() - start)
    return samples


async def memory_latency() -> list[float]:
    send, receive = trio.open_memory_channel[bytes](1024)

    async def trip(frame: bytes) -> None:
        send.send_nowait(frame)
        await receive.receive()

    return await time_trips(trip)


async def memory_burst() -> float:
    send, receive = trio.open_memory_channel[bytes](1024)
    start = time.perf_counter()
    async with trio.open_nursery() as nursery:

        async def consume() -> None:
            for _ in range(BURST):
                await receive.receive()

        nursery.start_soon(consume)
        for _ in range(BURST):
            await send.send(FRAME)
    return BURST / (time.perf_counter() - start)


async def bus_latency(url: str) -> list[float]:
    async with (
        open_bus(url, "owner:1:1") as owner,
        open_bus(url, "gateway:1:1") as gateway,
        gateway.subscribe("chat") as frames,
    ):

        async def trip(frame: bytes) -> None:
            owner.publish_nowait("chat", frame)
            await frames.__anext__()

        return await time_trips(trip)


async def bus_burst(url: str) -> tuple[float, int]:
    settings = BusSettings(outbox=BURST, buffer=BURST)
    async with (
        open_bus(url, "owner:1:1", settings) as owner,
        open_bus(url, "gateway:1:1", settings) as gateway,
        gateway.subscribe("chat") as frames,
    ):
        start = time.perf_counter()
        for _ in range(BURST):
            await owner.publish("chat", FRAME)
        received = 0
        with trio.move_on_after(30):
            async for item in frames:
                received += 1
                if received == BURST or not isinstance(item, bytes):
                    break
        return BURST / (time.perf_counter() - start), received


async def coredis_latency(url: str) -> list[float]:
    async with (
        coredis.Redis.from_url(url) as publisher,
        coredis.Redis.from_url(url) as subscriber,
        subscriber.pubsub(ignore_subscribe_messages=True, channels=["chat"]) as pubsub,
    ):

        async def trip(frame: bytes) -> None:
            await publisher.publish("chat", frame)
            while await pubsub.get_message() is None:
                pass

        return await time_trips(trip)


def main() -> None:
    with redis_server() as server:
        url = redis_url(server)
        memory = trio.run(memory_latency)
        bus = trio.run(bus_latency, url)
        raw = trio.run(coredis_latency, url)
        memory_rate = trio.run(memory_burst)
        bus_rate, received = trio.run(bus_burst, url)
    figures = {
        "trips": TRIPS,
        "frame_bytes": len(FRAME),
        "memory_channel": percentiles(memory),
        "bus": percentiles(bus),
        "coredis_pubsub": percentiles(raw),
        "bus_vs_coredis_p50": round(statistics.median(bus) / statistics.median(raw), 2),
        "burst": BURST,
        "memory_channel_frames_per_s": round(memory_rate),
        "bus_frames_per_s": round(bus_rate),
        "bus_burst_received": received,
        "bus_vs_memory_throughput": round(bus_rate / memory_rate, 3),
    }
    rows = [
        ("memory channel p50 / p99", "{p50_us} / {p99_us} µs".format(**percentiles(memory))),
        ("bus p50 / p99", "{p50_us} / {p99_us} µs".format(**percentiles(bus))),
        ("coredis pub/sub p50 / p99", "{p50_us} / {p99_us} µs".format(**percentiles(raw))),
        ("bus / coredis p50", f"{figures['bus_vs_coredis_p50']}x"),
        ("memory channel burst", f"{memory_rate:,.0f} frames/s"),
        ("bus burst", f"{bus_rate:,.0f} frames/s ({received} of {BURST} received)"),
    ]
    report("bus", rows, figures)


if __name__ == "__main__":
    main()
