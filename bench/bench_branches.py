"""Benchmark: switching a long chat's branch while another chat streams.

A chat of 10,000 events (two branches, forked half-way) in a log of about
80,000 events (other chats' stories around it), opened by the real engine.
A second chat streams a beat, one token every 5 ms, watched through the
engine as a client would be. Meanwhile the long chat:

- switches branch: once replaying its path (no rows kept), then back and
  forth with each branch's rows kept when it was left;
- rewinds (a fork, then the per-chat replay); and
- as the baseline, in the same run, does what a rewind did before branches:
  a snapshot of the database and a replay of the whole log on the store's
  thread.

For each, the time the operation took and the longest gap between two
tokens of the streaming chat while it ran. The goal: a switch in at most
200 ms with no token gap over 50 ms.

    PYTHONPATH=. python bench/bench_branches.py [--other-events 70000]
"""

from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import trio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _report import report

from actors import Engine, EngineSettings, open_engine
from llm import ScriptedBackend
from protocol import Token
from protocol import events as ev
from store import Store
from story import parse_prose

TOKEN_DELAY = 0.005


def exchange(store: Store, chat_id: str, bot: str, n: int) -> int:
    """One exchange of a chat: five events (a line, a beat, its memory and an edge)."""
    prose = f"Line {n}: the tide turns and the lamps are lit along the quay."
    (user,) = store.append(ev.UserTurn(chat_id, prose, parse_prose(prose))).ids
    (started,) = store.append(ev.AssistantTurnStarted(chat_id, bot, user)).ids
    (beat,) = store.append(
        ev.AssistantTurn(chat_id, bot, user, started, f"Reply {n}: the harbour is quiet tonight.")
    ).ids
    store.append(
        ev.MemoryWritten(chat_id, bot, f"Ana said line {n}.", source_event_id=beat),
        ev.EdgeUpdate(bot, "you", chat_id, 1 if n % 2 else -1, 0),
    )
    return user


def build(path: Path, chat_events: int, other_events: int) -> tuple[int, int]:
    """The log; returns the long chat's two branches (the first, then the forked one)."""
    store = Store.open(path)
    try:
        store.append(ev.BotCreated("mira", "Mira", "A barkeep."))
        store.append(ev.BotCreated("tam", "Tam", "A sailor."))
        store.append(ev.ChatCreated("c1", "Long", "mira"), ev.SceneOpened("c1", "Inn"))
        store.append(ev.ChatCreated("c2", "Streaming", "tam"), ev.SceneOpened("c2", "Quay"))
        others = [f"c{n}" for n in range(3, 8)]
        for chat_id in others:
            store.append(ev.ChatCreated(chat_id, chat_id, "tam"))
        # The long chat: 2.5 runs of `half` exchanges of five events (a run and a half
        # on the forked branch); the others' exchanges are spread evenly between.
        half = max(2, round(chat_events / 12.5))
        spread = other_events / (5 * 2.5 * half)
        owed = 0.0
        fork_at = 0

        def others_talk(n: int) -> None:
            nonlocal owed
            owed += spread
            while owed >= 1:
                owed -= 1
                exchange(store, others[n % len(others)], "tam", n)
                n += 1

        for n in range(half):
            user = exchange(store, "c1", "mira", n)
            if n == half // 2:
                fork_at = user
            others_talk(n)
        root = store.current_branch("c1")
        forked = store.fork("c1", fork_at, "edit")
        for m in range(half + half // 2):
            exchange(store, "c1", "mira", half + m)
            others_talk(half + m)
        (long,) = store.conn.execute(
            "SELECT count(*) FROM event_log WHERE chat_id = 'c1'"
        ).fetchall()[0]
        print(f"built: {store.event_count()} events, chat c1 {long}", file=sys.stderr)
        return root, forked
    finally:
        store.close()


async def while_streaming(
    engine: Engine, backend: ScriptedBackend, job: Callable[[], Awaitable[Any]]
) -> dict[str, float]:
    """Run ``job`` while chat c2 streams; its time and the longest token gap meanwhile."""
    backend.push_narrative(" ".join(f"word{n}" for n in range(4000)), delay=TOKEN_DELAY)
    arrivals: list[float] = []
    window: list[float] = []
    flowing = trio.Event()
    async with engine.watch("c2") as messages:
        await engine.send_turn("c2", '"Tell me a long story, Tam."')
        async with trio.open_nursery() as nursery:

            async def run_job() -> None:
                await flowing.wait()  # the stream is under way
                started = time.perf_counter()
                await job()
                ended = time.perf_counter()
                window.extend((started, ended))
                await trio.sleep(0.2)
                await engine.cancel("c2")

            nursery.start_soon(run_job)
            async for message in messages:
                if isinstance(message, Token) and message.chat_id == "c2":
                    arrivals.append(time.perf_counter())
                    if len(arrivals) == 50:
                        flowing.set()
                if window and arrivals and arrivals[-1] > window[1] + 0.1:
                    break
    await engine.wait_settled("c2")
    started, ended = window
    # Gaps between tokens that touch the window (the one spanning its end included).
    times = [t for t in arrivals if started - 0.05 <= t <= ended + 0.1]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    return {
        "seconds_ms": round((ended - started) * 1000, 1),
        "max_token_gap_ms": round(max(gaps, default=0.0) * 1000, 1),
        "tokens_meanwhile": len(times),
    }


async def measure(path: Path, folder: Path, root: int, forked: int) -> dict[str, Any]:
    backend = ScriptedBackend()
    settings = EngineSettings(db_path=path, data_dir=folder)
    async with open_engine(settings, narrative=backend, classifier=backend) as engine:

        async def pause() -> None:
            await trio.sleep(0.3)

        calm = await while_streaming(engine, backend, pause)
        # No rows kept for any branch: the switch replays the chat's path.
        await engine.store.run(lambda s: s.conn.execute("DELETE FROM branch_views"))
        replayed = await while_streaming(engine, backend, lambda: engine.switch_branch("c1", root))
        # Back and forth: each branch's rows were kept when it was left.
        switch_back = await while_streaming(
            engine, backend, lambda: engine.switch_branch("c1", forked)
        )
        switch_again = await while_streaming(
            engine, backend, lambda: engine.switch_branch("c1", root)
        )
        rewind_target = (await engine.chat_state("c1")).timeline[-100].event_id
        rewind_now = await while_streaming(
            engine, backend, lambda: engine.rewind("c1", rewind_target)
        )

        def old_rewind(s: Store) -> None:
            s.snapshot("rewind-baseline")
            s.rebuild()

        before = await while_streaming(engine, backend, lambda: engine.store.run(old_rewind))
        events = await engine.store.run(Store.event_count)
    return {
        "events": events,
        "idle_stream": calm,
        "switch_branch_replayed": replayed,
        "switch_branch": switch_back,
        "switch_branch_again": switch_again,
        "rewind": rewind_now,
        "whole_log_rewind_before": before,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chat-events", type=int, default=10_000)
    parser.add_argument("--other-events", type=int, default=70_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        path = folder / "troupe.db"
        root, forked = build(path, args.chat_events, args.other_events)
        figures = trio.run(measure, path, folder, root, forked)
    rows = [
        ("events in the log", str(figures["events"])),
        ("token gap, nothing else running", f"{figures['idle_stream']['max_token_gap_ms']} ms"),
    ]
    for key, label in (
        ("switch_branch_replayed", "switch branch, replaying the chat (10k events)"),
        ("switch_branch", "switch branch, its rows kept"),
        ("switch_branch_again", "switch back, its rows kept"),
        ("rewind", "rewind (a fork: replays the chat)"),
        ("whole_log_rewind_before", "rewind as before (snapshot + whole log)"),
    ):
        f = figures[key]
        rows.append(
            (label, f"{f['seconds_ms']} ms, other chat's max token gap {f['max_token_gap_ms']} ms")
        )
    report("branches", rows, figures)


if __name__ == "__main__":
    main()
