"""The store's append on PostgreSQL against the same store on its SQLite file.

The same user turns of one chat go through ``Store.append`` on both
backends: one event per append, 100 per append, and ``AsyncStore.append``
from 50 trio tasks at once (writes queued together share a transaction).
PostgreSQL is a server of our own on loopback (``fsync`` off, as in the
tests), so the ratio is the price of the round trips and of PostgreSQL's
work per statement, not of a disk. Each figure is the best of ``ROUNDS``.
"""

from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import psycopg  # noqa: E402

from protocol import events as ev  # noqa: E402
from store import Store  # noqa: E402
from tests.support.servers import postgres_server  # noqa: E402

sys.path.insert(0, str(HERE))
from bench_store_append import AT  # noqa: E402
from bench_store_append import troupe as appends  # noqa: E402
from bench_store_append import troupe_async as async_appends  # noqa: E402

SINGLE = 1_000
BATCHED = 5_000
BATCH = 100
TASKS = 50
ROUNDS = 2


def prepared(target: str) -> str:
    store = Store.open(target, now=lambda: AT)
    store.append(ev.BotCreated("mira", "Mira", "A barkeep."))
    store.append(ev.ChatCreated("c1", "t", "mira"))
    store.close()
    return target


def measure() -> dict[str, float]:
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp, postgres_server() as pg:
        names = iter(range(1_000_000))

        def sqlite() -> str:
            return prepared(str(Path(tmp) / f"s{next(names)}.db"))

        def postgresql() -> str:
            name = f"bench_{next(names)}"
            with psycopg.connect(pg.url, autocommit=True) as admin:
                admin.execute(f"CREATE DATABASE {name}")
            return prepared(pg.url.rsplit("/", 1)[0] + "/" + name)

        runs: dict[str, Callable[[str], float]] = {
            "single": lambda t: appends(t, SINGLE, 1),
            "batched": lambda t: appends(t, BATCHED, BATCH),
            "async_50": lambda t: async_appends(t, SINGLE, TASKS),
        }
        for backend, fresh in (("sqlite", sqlite), ("postgresql", postgresql)):
            for run, fn in runs.items():
                figures[f"{backend}_{run}"] = max(fn(fresh()) for _ in range(ROUNDS))
    for run in ("single", "batched", "async_50"):
        figures[f"{run}_ratio"] = figures[f"postgresql_{run}"] / figures[f"sqlite_{run}"]
    return figures


def main() -> None:
    figures = measure()
    sys.path.insert(0, str(HERE))
    from _report import report

    rows = []
    for run, what in (
        ("single", "1 event an append"),
        ("batched", f"{BATCH} an append"),
        ("async_50", f"async, {TASKS} tasks"),
    ):
        rows += [
            (f"sqlite, {what}", f"{figures[f'sqlite_{run}']:,.0f} events/s"),
            (f"postgresql, {what}", f"{figures[f'postgresql_{run}']:,.0f} events/s"),
            ("  ratio postgresql / sqlite", f"{figures[f'{run}_ratio']:.2f}x"),
        ]
    report("store_postgresql", rows, figures)
    print(json.dumps({k: round(v, 3) for k, v in figures.items()}))


if __name__ == "__main__":
    main()
