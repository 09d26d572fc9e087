"""How trio meets apsw: every store call runs on one worker thread.

apsw calls block. Running them on the trio loop would stall every stream
while SQLite works (a checkpoint, a rewind, a rebuild), so each call hops to
a thread; a limiter of one keeps them in order, one at a time, which is also
what SQLite's single writer wants.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import trio

from ._store import Store, utc_now

T = TypeVar("T")


class AsyncStore:
    """The :class:`Store`, for trio: ``await astore.run(fn, *args)`` runs ``fn(store, *args)``."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._limiter = trio.CapacityLimiter(1)
        self.calls = 0

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(store, *args)`` on the store's thread and return its result."""
        self.calls += 1
        return await trio.to_thread.run_sync(
            lambda: fn(self.store, *args), limiter=self._limiter
        )

    def statistics(self) -> dict[str, Any]:
        """Calls made, calls waiting for the thread, and the store's own figures."""
        return {
            "calls": self.calls,
            "waiting": self._limiter.statistics().tasks_waiting,
            **self.store.statistics(),
        }


@asynccontextmanager
async def open_store(
    path: str | Path,
    *,
    data_dir: str | Path | None = None,
    keep_snapshots: int = 5,
    now: Callable[[], str] = utc_now,
) -> AsyncIterator[AsyncStore]:
    """Open the store (migrations and crash recovery run on the thread) for a block."""
    store = await trio.to_thread.run_sync(
        lambda: Store.open(path, data_dir=data_dir, keep_snapshots=keep_snapshots, now=now)
    )
    astore = AsyncStore(store)
    try:
        yield astore
    finally:
        with trio.CancelScope(shield=True):
            await astore.run(Store.close)
