"""How trio meets apsw: every store call runs on one dedicated thread.

apsw calls block. Run on the trio loop, a rewind or a rebuild would stall
every stream while SQLite works, so each call is handed to one long-lived
thread, fed by a queue, that owns the connection: calls run one at a time
in the order they were made (also what SQLite's single writer wants), and
the waiting task is woken straight from that thread. This measured faster
than ``trio.to_thread.run_sync`` with a ``CapacityLimiter(1)`` (see
bench/bench_store.py), which also may pick a different thread for each call.

Cancellation: a call cancelled before it is queued does not run; once
queued it runs to the end and its caller waits for it, as with
``to_thread``: a write is never half-known.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import outcome
import trio

from protocol import ChatMessage
from protocol import events as ev

from ._records import AppendResult, Render
from ._store import Store, utc_now

T = TypeVar("T")

_Job = tuple[Callable[[], Any], trio.lowlevel.TrioToken, trio.lowlevel.Task]


class _Worker:
    """One thread running queued calls; results go back to the task that asked."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._loop, name="troupe-store", daemon=True)
        self._thread.start()
        self.calls = 0

    def _loop(self) -> None:
        while (job := self._jobs.get()) is not None:
            fn, token, task = job
            result = outcome.capture(fn)
            try:
                token.run_sync_soon(trio.lowlevel.reschedule, task, result)
            except trio.RunFinishedError:
                pass  # the trio run is gone; nobody is waiting any more

    async def call(self, fn: Callable[[], T]) -> T:
        await trio.lowlevel.checkpoint_if_cancelled()
        if not self._thread.is_alive():
            raise trio.ClosedResourceError("the store is closed")
        self.calls += 1
        self._jobs.put((fn, trio.lowlevel.current_trio_token(), trio.lowlevel.current_task()))
        result: T = await trio.lowlevel.wait_task_rescheduled(
            lambda _: trio.lowlevel.Abort.FAILED  # queued: it will run; wait for it
        )
        return result

    def pending(self) -> int:
        return self._jobs.qsize()

    def stop(self) -> None:
        self._jobs.put(None)


class AsyncStore:
    """The :class:`Store` for trio: ``await astore.run(fn, *args)`` runs ``fn(store, *args)``.

    ``fn`` runs on the store's own thread, so it may make several store calls
    that see one consistent state (and, wrapped in one ``append``, commit
    together). Build one with :func:`open_store`.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self._worker = _Worker()
        self._closed = False

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(store, *args)`` on the store's thread and return (or raise) its result."""
        if self._closed:
            raise trio.ClosedResourceError("the store is closed")
        return await self._worker.call(lambda: fn(self.store, *args))

    async def append(self, *events: ev.Event, render: Render | None = None) -> AppendResult:
        """:meth:`Store.append` on the store's thread."""
        return await self._worker.call(lambda: self.store.append(*events, render=render))

    async def record(self, messages: Sequence[ChatMessage]) -> tuple[ChatMessage, ...]:
        """:meth:`Store.record` on the store's thread."""
        return await self._worker.call(lambda: self.store.record(messages))

    async def checkpoint_beat(self, beat_id: int, chat_id: str, text: str) -> None:
        """:meth:`Store.checkpoint_beat` on the store's thread."""
        await self._worker.call(lambda: self.store.checkpoint_beat(beat_id, chat_id, text))

    async def aclose(self) -> None:
        """Close the database (after the calls already queued) and end the thread."""
        if self._closed:
            return
        self._closed = True
        try:
            with trio.CancelScope(shield=True):
                await self._worker.call(self.store.close)
        finally:
            self._worker.stop()

    def statistics(self) -> dict[str, Any]:
        """Calls made, calls queued right now, and the store's counters.

        Reads no table: the connection belongs to the store's thread, and the
        loop must not wait for SQLite. ``await astore.run(Store.statistics)``
        adds the log's size.
        """
        return {
            "calls": self._worker.calls,
            "queued": self._worker.pending(),
            **self.store.counters(),
        }


@asynccontextmanager
async def open_store(
    path: str | Path,
    *,
    data_dir: str | Path | None = None,
    keep_snapshots: int = 5,
    now: Callable[[], str] = utc_now,
) -> AsyncIterator[AsyncStore]:
    """Open the store for a block; migrations and crash recovery run off the trio loop."""
    store = await trio.to_thread.run_sync(
        lambda: Store.open(path, data_dir=data_dir, keep_snapshots=keep_snapshots, now=now)
    )
    astore = AsyncStore(store)
    try:
        yield astore
    finally:
        await astore.aclose()
