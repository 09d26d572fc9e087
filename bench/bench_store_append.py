"""The store's append against raw apsw writing the same rows with the same pragmas.

Every event is a user turn of one chat. Both sides write what the store
writes for it: the ``event_log`` row and the ``timeline`` row, with the same
values (the payload JSON, the time stamp, who was present), into a database
the store created (same schema, WAL, ``synchronous=NORMAL``), the log row on
the chat's branch as the store writes it. The store also
checks each event (its payload's round trip and limits, that the chat
exists: from the chat's facts it keeps in memory after the first append)
and keeps its counters; raw apsw does nothing but the inserts, its payload
text made before the clock starts. So the ratio is the price of the store's
work per event, on top of SQLite's.

- single: one event per transaction (``BEGIN IMMEDIATE`` ... ``COMMIT``), for
  the store one ``append(event)`` per event;
- batched: 100 events per transaction, for the store ``append(*events)``;
- async: ``AsyncStore.append(event)`` from 50 trio tasks at once (as 50 chats
  streaming would), against raw apsw one event per transaction; and from one
  task, one event after another (each waits for the store's thread).

Each figure is the best of ``ROUNDS`` rounds. Run against another tree with
``PYTHONPATH=DIR python bench/bench_store_append.py --label before``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import trio

HERE = Path(__file__).resolve().parent

from protocol import Segment, dump_event  # noqa: E402
from protocol import events as ev  # noqa: E402
from store import Store, open_store  # noqa: E402

SINGLE = 3_000
BATCHED = 20_000
BATCH = 100
TASKS = 50
ROUNDS = 3
AT = "2026-01-01T00:00:00.000+00:00"


def turn(i: int) -> ev.UserTurn:
    text = f"Line {i}: the storm came in fast, and the key was in my brother's coat."
    return ev.UserTurn("c1", text, (Segment("narration", text),))


def fresh(folder: Path, name: str) -> Path:
    """A database with the store's schema, one bot and one chat."""
    path = folder / f"{name}.db"
    store = Store.open(path, data_dir=folder / name, now=lambda: AT)
    store.append(ev.BotCreated("mira", "Mira", "A barkeep."))
    store.append(ev.ChatCreated("c1", "t", "mira"))
    store.close()
    return path


def raw_rows(n: int) -> list[tuple[tuple[Any, ...], tuple[Any, ...]]]:
    """The rows the store writes for ``n`` turns: log values, timeline values (id filled later)."""
    rows = []
    for i in range(n):
        kind, payload = dump_event(turn(i))
        rows.append((("c1", kind, payload), ("c1", "you", turn(i).prose, '["mira", "you"]')))
    return rows


def raw(path: Path, n: int, batch: int) -> float:
    """Events per second, raw apsw: the same inserts, ``batch`` events per transaction."""
    from store._store import connect

    conn = connect(path)
    rows = raw_rows(n)
    # An older schema's timeline has no ``present``: write what that store writes.
    columns = {row[1] for row in conn.execute("PRAGMA table_info(timeline)")}
    present = "present" in columns
    # Each log row carries its chat's branch where the schema has one: the store writes it.
    branch = None
    if "branch_id" in {row[1] for row in conn.execute("PRAGMA table_info(event_log)")}:
        (branch,) = conn.execute("SELECT current FROM chat_branch WHERE chat_id = 'c1'").fetchone()
    insert = "INSERT INTO timeline(event_id, chat_id, kind, speaker_id, text, user_turn_id" + (
        ", present) VALUES (?, ?, 'user', ?, ?, ?, ?)"
        if present
        else ") VALUES (?, ?, 'user', ?, ?, ?)"
    )
    log_insert = "INSERT INTO event_log(at, chat_id, kind, payload" + (
        ", branch_id) VALUES (?, ?, ?, ?, ?)" if branch is not None else ") VALUES (?, ?, ?, ?)"
    )
    started = time.perf_counter()
    for start in range(0, n, batch):
        conn.execute("BEGIN IMMEDIATE")
        for log_row, line in rows[start : start + batch]:
            log_values = (AT, *log_row, branch) if branch is not None else (AT, *log_row)
            conn.execute(log_insert, log_values)
            event_id = conn.last_insert_rowid()
            values = (event_id, line[0], line[1], line[2], event_id)
            conn.execute(insert, (*values, line[3]) if present else values)
        conn.execute("COMMIT")
    rate = n / (time.perf_counter() - started)
    conn.close()
    return rate


def troupe(path: Path, n: int, batch: int) -> float:
    """Events per second through ``Store.append``, ``batch`` events per call."""
    store = Store.open(path, now=lambda: AT)
    events = [turn(i) for i in range(n)]
    started = time.perf_counter()
    for start in range(0, n, batch):
        store.append(*events[start : start + batch])
    rate = n / (time.perf_counter() - started)
    store.close()
    return rate


def troupe_async(path: Path, n: int, tasks: int) -> float:
    """Events per second through ``AsyncStore.append``, one event per call, ``tasks`` at once."""
    events = [turn(i) for i in range(n)]

    async def main() -> float:
        async with open_store(path, now=lambda: AT) as astore:

            async def writer(k: int) -> None:
                for event in events[k::tasks]:
                    await astore.append(event)

            started = time.perf_counter()
            async with trio.open_nursery() as nursery:
                for k in range(tasks):
                    nursery.start_soon(writer, k)
            return n / (time.perf_counter() - started)

    return trio.run(main)


def best(folder: Path, name: str, fn: Callable[[Path], float]) -> float:
    return max(fn(fresh(folder, f"{name}-{r}")) for r in range(ROUNDS))


def measure() -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        figures = {
            "raw_single": best(folder, "rs", lambda p: raw(p, SINGLE, 1)),
            "store_single": best(folder, "ts", lambda p: troupe(p, SINGLE, 1)),
            "raw_batched": best(folder, "rb", lambda p: raw(p, BATCHED, BATCH)),
            "store_batched": best(folder, "tb", lambda p: troupe(p, BATCHED, BATCH)),
            "store_async_50": best(folder, "ta", lambda p: troupe_async(p, SINGLE, TASKS)),
            "store_async_1": best(folder, "t1", lambda p: troupe_async(p, SINGLE, 1)),
        }
    figures["single_ratio"] = figures["store_single"] / figures["raw_single"]
    figures["batched_ratio"] = figures["store_batched"] / figures["raw_batched"]
    figures["async_ratio"] = figures["store_async_50"] / figures["raw_single"]
    figures["async_1_ratio"] = figures["store_async_1"] / figures["raw_single"]
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--label", default="after", help="the name of this tree's result")
    args = parser.parse_args()
    figures = measure()
    sys.path.insert(0, str(HERE))
    from _report import report

    rows = [
        ("raw apsw, 1 event a transaction", f"{figures['raw_single']:,.0f} events/s"),
        ("store, 1 event an append", f"{figures['store_single']:,.0f} events/s"),
        ("  ratio (goal >= 0.8)", f"{figures['single_ratio']:.2f}x"),
        ("raw apsw, 100 a transaction", f"{figures['raw_batched']:,.0f} events/s"),
        ("store, 100 an append", f"{figures['store_batched']:,.0f} events/s"),
        ("  ratio (goal >= 0.8)", f"{figures['batched_ratio']:.2f}x"),
        (f"async store, {TASKS} tasks", f"{figures['store_async_50']:,.0f} events/s"),
        ("  ratio to raw single (goal >= 0.8)", f"{figures['async_ratio']:.2f}x"),
        ("async store, 1 task", f"{figures['store_async_1']:,.0f} events/s"),
        ("  ratio to raw single", f"{figures['async_1_ratio']:.2f}x"),
    ]
    report(f"store_append_{args.label}", rows, {"label": args.label, **figures})
    print(json.dumps({k: round(v, 3) for k, v in figures.items()}))


if __name__ == "__main__":
    main()
