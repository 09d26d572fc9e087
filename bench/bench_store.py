"""Benchmark of the event store: appends, the recent-dialogue query, rebuild, rewind, loop lag.

Run: .venv/bin/python bench/bench_store.py   (about a minute; writes bench/results/store.json)

Every figure is reported against a baseline measured in the same run:

- append: batched (100 events per transaction) against single (1 per
  transaction), and single with synchronous=NORMAL against FULL;
- recent_dialogue: at 100k events over 100 chats against 1k events;
- rebuild and rewind at 100k events against appending those events;
- AsyncStore's dedicated thread against trio.to_thread with a limiter of 1;
- loop lag while the store works through AsyncStore against an idle loop.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import trio  # noqa: E402

from protocol import Segment  # noqa: E402
from protocol import events as ev  # noqa: E402
from store import AsyncStore, Store  # noqa: E402

CHATS = 100
BIG = 100_000
SMALL = 1_000


def segments(text: str) -> tuple[Segment, ...]:
    return (Segment("narration", text),)


def fresh(folder: Path, name: str) -> Store:
    store = Store.open(folder / f"{name}.db", data_dir=folder / name)
    store.append(ev.BotCreated("mira", "Mira", "A barkeep."))
    return store


def fill(store: Store, total: int, chats: int) -> float:
    """Append ``total`` turns spread round-robin over ``chats`` chats, 10 per transaction.

    Returns the seconds it took: the baseline rebuild and rewind are held to.
    """
    ids = [f"c{n}" for n in range(1, chats + 1)]
    next_id = store.append(*(ev.ChatCreated(c, c, "mira") for c in ids)).ids[-1] + 1
    started = time.perf_counter()
    for start in range(0, total // chats, 10):
        for chat_id in ids:
            batch: list[ev.Event] = []
            for i in range(10):
                n = start + i
                if n % 2 == 0:
                    text = f"Line {n} of {chat_id}: the storm, the key."
                    batch.append(ev.UserTurn(chat_id, text, segments(text)))
                else:  # answers the user turn just before it
                    reply = f"Reply {n} to {chat_id}."
                    batch.append(ev.AssistantTurn(chat_id, "mira", next_id + i - 1, None, reply))
            got = store.append(*batch).ids
            assert got[0] == next_id
            next_id = got[-1] + 1
    return time.perf_counter() - started


def timed(fn: Callable[[], Any], repeat: int) -> float:
    """Median seconds of ``fn`` over ``repeat`` runs."""
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def bench_appends(folder: Path) -> dict[str, float]:
    store = fresh(folder, "appends")
    store.append(ev.ChatCreated("c1", "t", "mira"))
    single_n, batch_n = 3_000, 30_000

    def single(n: int) -> float:
        started = time.perf_counter()
        for i in range(n):
            store.append(ev.UserTurn("c1", f"Line {i}.", segments("x")))
        return n / (time.perf_counter() - started)

    normal = single(single_n)
    store.conn.execute("PRAGMA synchronous = FULL")
    full = single(single_n)
    store.conn.execute("PRAGMA synchronous = NORMAL")
    started = time.perf_counter()
    for start in range(0, batch_n, 100):
        store.append(*(ev.UserTurn("c1", f"Line {start + i}.", segments("x")) for i in range(100)))
    batched = batch_n / (time.perf_counter() - started)
    store.close()
    return {
        "single_events_per_s": round(normal),
        "single_full_sync_events_per_s": round(full),
        "batched_events_per_s": round(batched),
        "batched_over_single": round(batched / normal, 2),
        "normal_over_full_sync": round(normal / full, 2),
    }


def bench_history(folder: Path) -> tuple[dict[str, float], Path]:
    small = fresh(folder, "small")
    fill(small, SMALL, CHATS)
    big = fresh(folder, "big")
    fill_s = fill(big, BIG, CHATS)
    figures: dict[str, float] = {"events": big.event_count(), "append_100k_s": round(fill_s, 2)}

    # Ten turns: at 1k events over 100 chats a chat has exactly ten, so both
    # sizes return the same rows and only the history around them differs.
    query, limit = "c50", 10
    q_small = timed(lambda: small.recent_dialogue(query, limit), 3000)
    q_big = timed(lambda: big.recent_dialogue(query, limit), 3000)
    assert len(small.recent_dialogue(query, limit)) == len(big.recent_dialogue(query, limit))
    assert [t.text for t in big.recent_dialogue(query, 2)][-1].startswith("Reply 999 ")
    figures |= {
        "recent_dialogue_1k_us": round(q_small * 1e6, 1),
        "recent_dialogue_100k_us": round(q_big * 1e6, 1),
        "recent_dialogue_100k_over_1k": round(q_big / q_small, 2),
    }
    small.close()

    started = time.perf_counter()
    big.rebuild()
    rebuild_s = time.perf_counter() - started
    middle = big.conn.execute(
        "SELECT id FROM event_log WHERE chat_id = ? ORDER BY id LIMIT 1 OFFSET 500", (query,)
    ).fetchall()[0][0]
    assert isinstance(middle, int)
    started = time.perf_counter()
    big.rewind(query, middle)
    rewind_s = time.perf_counter() - started
    figures |= {
        "rebuild_100k_s": round(rebuild_s, 2),
        "rewind_100k_s": round(rewind_s, 2),
        "rebuild_over_append": round(rebuild_s / fill_s, 2),
        "rewind_over_rebuild": round(rewind_s / rebuild_s, 2),
    }
    path = Path(big.conn.filename)
    big.close()
    return figures, path


async def lag_while(work: Callable[[], Awaitable[Any]]) -> dict[str, float]:
    """Loop lag (how late a 1 ms sleep wakes) while ``work`` runs; idle when ``work`` is quick."""
    lags: list[float] = []
    done = False

    async def monitor() -> None:
        while not done:
            started = time.perf_counter()
            await trio.sleep(0.001)
            lags.append(time.perf_counter() - started - 0.001)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(monitor)
        await trio.sleep(0.05)
        await work()
        done = True
    lags.sort()
    return {
        "max_ms": round(lags[-1] * 1000, 2),
        "p99_ms": round(lags[int(len(lags) * 0.99)] * 1000, 2),
        "samples": len(lags),
    }


class ToThread:
    """The alternative AsyncStore design, measured against the one we ship."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.limiter = trio.CapacityLimiter(1)

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await trio.to_thread.run_sync(lambda: fn(self.store, *args), limiter=self.limiter)


async def bench_async(folder: Path, big_db: Path) -> dict[str, Any]:
    store = fresh(folder, "async")
    store.append(ev.ChatCreated("c1", "t", "mira"))
    astore = AsyncStore(store)
    other = ToThread(store)
    calls = 3000

    async def per_call(runner: Any) -> float:
        started = time.perf_counter()
        for _ in range(calls):
            await runner.run(Store.last_seq, "c1")
        return (time.perf_counter() - started) / calls

    to_thread = min([await per_call(other) for _ in range(3)])
    dedicated = min([await per_call(astore) for _ in range(3)])

    async def idle_loop() -> None:
        await trio.sleep(1.0)

    idle = await lag_while(idle_loop)

    async def appends() -> None:
        for n in range(3000):
            await astore.append(ev.UserTurn("c1", f"Line {n}.", segments("x")))
        for n in range(100):
            await astore.append(
                *(ev.UserTurn("c1", f"Batch {n}-{i}.", segments("x")) for i in range(100))
            )

    appending = await lag_while(appends)
    await astore.aclose()

    big = AsyncStore(Store.open(big_db, data_dir=folder / "big"))
    target = await big.run(
        lambda s: s.conn.execute(
            "SELECT id FROM event_log WHERE chat_id = 'c7' ORDER BY id LIMIT 1 OFFSET 100"
        ).fetchall()[0][0]
    )
    rewinding = await lag_while(lambda: big.run(Store.rewind, "c7", target))
    rebuilding = await lag_while(lambda: big.run(Store.rebuild))
    await big.aclose()
    return {
        "to_thread_call_us": round(to_thread * 1e6, 1),
        "dedicated_call_us": round(dedicated * 1e6, 1),
        "dedicated_over_to_thread": round(dedicated / to_thread, 2),
        "lag_idle": idle,
        "lag_appending": appending,
        "lag_rewinding_100k": rewinding,
        "lag_rebuilding_100k": rebuilding,
    }


def main() -> None:
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        appends = bench_appends(folder)
        history, big_db = bench_history(folder)
        loop = trio.run(bench_async, folder, big_db)
    results = {
        "appends": appends,
        "history": history,
        "async": loop,
        "python": sys.version.split()[0],
        "seconds": round(time.perf_counter() - started, 1),
    }
    a, h = appends, history
    rows = [
        ("append, 1 per transaction", f"{a['single_events_per_s']} ev/s", "baseline"),
        (
            "append, 100 per transaction",
            f"{a['batched_events_per_s']} ev/s",
            f"{a['batched_over_single']}x single",
        ),
        (
            "append, 1 per tx, synchronous=FULL",
            f"{a['single_full_sync_events_per_s']} ev/s",
            f"NORMAL is {a['normal_over_full_sync']}x FULL",
        ),
        ("recent_dialogue(10), 1k events", f"{h['recent_dialogue_1k_us']} us", "baseline"),
        (
            "recent_dialogue(10), 100k events",
            f"{h['recent_dialogue_100k_us']} us",
            f"{h['recent_dialogue_100k_over_1k']}x 1k",
        ),
        ("append 100k events, 10 per tx", f"{h['append_100k_s']} s", "baseline"),
        (
            "rebuild, 100k events",
            f"{h['rebuild_100k_s']} s",
            f"{h['rebuild_over_append']}x appending",
        ),
        (
            "rewind, 100k events (with snapshot)",
            f"{h['rewind_100k_s']} s",
            f"{h['rewind_over_rebuild']}x rebuild",
        ),
        ("store call, to_thread + limiter", f"{loop['to_thread_call_us']} us", "baseline"),
        (
            "store call, dedicated thread",
            f"{loop['dedicated_call_us']} us",
            f"{loop['dedicated_over_to_thread']}x to_thread",
        ),
    ]
    idle_max = loop["lag_idle"]["max_ms"]
    for label, key in [
        ("idle", "lag_idle"),
        ("appending", "lag_appending"),
        ("rewinding 100k", "lag_rewinding_100k"),
        ("rebuilding 100k", "lag_rebuilding_100k"),
    ]:
        lag = loop[key]
        rows.append(
            (
                f"loop lag {label}, max / p99",
                f"{lag['max_ms']} / {lag['p99_ms']} ms",
                "baseline" if key == "lag_idle" else f"max {lag['max_ms'] / idle_max:.1f}x idle",
            )
        )
    width = max(len(r[0]) for r in rows)
    for name, value, ratio in rows:
        print(f"{name:<{width}}  {value:>18}  {ratio}")
    print(f"total {results['seconds']} s")
    out = ROOT / "bench" / "results" / "store.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
