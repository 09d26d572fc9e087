"""Benchmark of the actor runtime: tell, ask, and topic fan-out, against raw trio channels.

Run: .venv/bin/python bench/bench_runtime.py   (well under a minute; writes
bench/results/runtime.json)

Every figure is reported against a baseline measured in the same run:

- tell throughput against a raw ``trio.open_memory_channel`` producer and
  consumer with the same buffer (target: at least 0.5x);
- ask round trip against a raw ping-pong over two memory channels
  (target: at most 2x the raw round trip);
- topic fan-out to 1, 10 and 100 subscribers (messages delivered per
  second) against one raw memory channel per subscriber fed with
  ``send_nowait``.

Each figure is the best of several rounds, so a stray pause of the
machine does not decide it.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import trio  # noqa: E402
import trio.testing  # noqa: E402

from runtime import Actor, Topic, open_actor_system  # noqa: E402

MESSAGES = 100_000
ROUND_TRIPS = 30_000
FANOUT_MESSAGES = 10_000
ROUNDS = 5
MAILBOX = 64


def best_of(rounds: int, measure: Callable[[], Awaitable[float]]) -> float:
    """The fastest of ``rounds`` runs of ``measure`` (seconds), each in a fresh trio run."""
    return min(trio.run(measure) for _ in range(rounds))


# --- tell throughput ---


async def raw_throughput() -> float:
    send, receive = trio.open_memory_channel[object](MAILBOX)
    done = trio.Event()

    async def consume() -> None:
        count = 0
        async for _message in receive:
            count += 1  # the "handler": as little as the actor's below
        done.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(consume)
        started = time.perf_counter()
        for n in range(MESSAGES):
            await send.send(n)
        await send.aclose()
        await done.wait()
        return time.perf_counter() - started


class Counter(Actor):
    def __init__(self) -> None:
        self.count = 0

    async def handle(self, message: object) -> object:
        self.count += 1
        return self.count


async def tell_throughput() -> float:
    async with open_actor_system() as system:
        ref = await system.spawn(Counter, "counter", mailbox_size=MAILBOX)
        started = time.perf_counter()
        for n in range(MESSAGES):
            await ref.tell(n)
        await ref.stop(drain=True)
        return time.perf_counter() - started


# --- ask round trip ---


async def raw_round_trip() -> float:
    to_server, server_in = trio.open_memory_channel[object](1)
    to_client, client_in = trio.open_memory_channel[object](1)

    async def serve() -> None:
        count = 0
        async for message in server_in:
            count += 1
            await to_client.send((message, count))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(serve)
        started = time.perf_counter()
        for n in range(ROUND_TRIPS):
            await to_server.send(n)
            await client_in.receive()
        took = time.perf_counter() - started
        await to_server.aclose()
        return took


async def ask_round_trip() -> float:
    async with open_actor_system() as system:
        ref = await system.spawn(Counter, "counter", mailbox_size=MAILBOX)
        started = time.perf_counter()
        for n in range(ROUND_TRIPS):
            await ref.ask(n, timeout=math.inf)  # the unbounded path, for comparison
        return time.perf_counter() - started


async def ask_round_trip_with_timeout() -> float:
    async with open_actor_system() as system:
        ref = await system.spawn(Counter, "counter", mailbox_size=MAILBOX)
        started = time.perf_counter()
        for n in range(ROUND_TRIPS):
            await ref.ask(n, timeout=5.0)
        return time.perf_counter() - started


# --- fan-out ---

BATCH = 200  # published between two points where every reader has caught up


def raw_fanout(subscribers: int) -> Callable[[], Awaitable[float]]:
    async def measure() -> float:
        channels = [trio.open_memory_channel[object](1024) for _ in range(subscribers)]
        delivered = [0]

        async def read(receive: trio.MemoryReceiveChannel[object]) -> None:
            async for _message in receive:
                delivered[0] += 1

        async with trio.open_nursery() as nursery:
            for _send, receive in channels:
                nursery.start_soon(read, receive)
            started = time.perf_counter()
            for start in range(0, FANOUT_MESSAGES, BATCH):
                for n in range(start, start + BATCH):
                    for send, _receive in channels:
                        send.send_nowait(n)
                await trio.testing.wait_all_tasks_blocked()
            took = time.perf_counter() - started
            for send, _receive in channels:
                await send.aclose()
        assert delivered[0] == FANOUT_MESSAGES * subscribers
        return took

    return measure


def topic_fanout(subscribers: int) -> Callable[[], Awaitable[float]]:
    async def measure() -> float:
        topic = Topic(max_buffer=1024)
        delivered = [0]
        subs = [topic.open() for _ in range(subscribers)]

        async def read(sub: Any) -> None:
            async for _message in sub:
                delivered[0] += 1

        async with trio.open_nursery() as nursery:
            for sub in subs:
                nursery.start_soon(read, sub)
            await trio.testing.wait_all_tasks_blocked()
            started = time.perf_counter()
            for start in range(0, FANOUT_MESSAGES, BATCH):
                for n in range(start, start + BATCH):
                    topic.publish(n)
                await trio.testing.wait_all_tasks_blocked()
            took = time.perf_counter() - started
            for sub in subs:
                sub.close()
        assert delivered[0] == FANOUT_MESSAGES * subscribers
        assert topic.statistics().lagged == 0
        return took

    return measure


def main() -> None:
    results: dict[str, Any] = {}
    rows: list[tuple[str, str, str, str]] = []

    raw = best_of(ROUNDS, raw_throughput)
    tell = best_of(ROUNDS, tell_throughput)
    results["tell"] = {
        "messages": MESSAGES,
        "raw_channel_msgs_per_s": round(MESSAGES / raw),
        "tell_msgs_per_s": round(MESSAGES / tell),
        "tell_over_raw": round(raw / tell, 2),
        "target": ">= 0.5",
    }
    rows.append(
        (
            "tell throughput",
            f"{MESSAGES / tell:,.0f} msg/s",
            f"{MESSAGES / raw:,.0f} msg/s",
            f"{raw / tell:.2f}x (target >= 0.5x)",
        )
    )

    raw_rt = best_of(ROUNDS, raw_round_trip)
    ask_rt = best_of(ROUNDS, ask_round_trip)
    ask_rt_timeout = best_of(ROUNDS, ask_round_trip_with_timeout)
    results["ask"] = {
        "round_trips": ROUND_TRIPS,
        "raw_round_trip_us": round(raw_rt / ROUND_TRIPS * 1e6, 2),
        "ask_round_trip_us": round(ask_rt / ROUND_TRIPS * 1e6, 2),
        "ask_with_timeout_round_trip_us": round(ask_rt_timeout / ROUND_TRIPS * 1e6, 2),
        "ask_over_raw": round(ask_rt / raw_rt, 2),
        "ask_with_timeout_over_raw": round(ask_rt_timeout / raw_rt, 2),
        "target": "<= 2.0",
    }
    rows.append(
        (
            "ask round trip",
            f"{ask_rt / ROUND_TRIPS * 1e6:.1f} us",
            f"{raw_rt / ROUND_TRIPS * 1e6:.1f} us",
            f"{ask_rt / raw_rt:.2f}x (target <= 2x)",
        )
    )
    rows.append(
        (
            "ask round trip, timeout=5",
            f"{ask_rt_timeout / ROUND_TRIPS * 1e6:.1f} us",
            f"{raw_rt / ROUND_TRIPS * 1e6:.1f} us",
            f"{ask_rt_timeout / raw_rt:.2f}x",
        )
    )

    results["fanout"] = {}
    for subscribers in (1, 10, 100):
        raw_f = best_of(3, raw_fanout(subscribers))
        topic_f = best_of(3, topic_fanout(subscribers))
        delivered = FANOUT_MESSAGES * subscribers
        results["fanout"][str(subscribers)] = {
            "delivered": delivered,
            "raw_channels_delivered_per_s": round(delivered / raw_f),
            "topic_delivered_per_s": round(delivered / topic_f),
            "topic_over_raw": round(raw_f / topic_f, 2),
        }
        rows.append(
            (
                f"fan-out to {subscribers}",
                f"{delivered / topic_f:,.0f} msg/s",
                f"{delivered / raw_f:,.0f} msg/s",
                f"{raw_f / topic_f:.2f}x",
            )
        )

    header = ("measure", "runtime", "raw trio baseline", "speed vs baseline")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(4)]
    for row in [header, tuple("-" * w for w in widths), *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))

    out = ROOT / "bench" / "results" / "runtime.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
