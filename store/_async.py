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

Group commit: writes made with :meth:`AsyncStore.append` or
:meth:`AsyncStore.commit` that are already queued when the thread gets to
them run in one transaction, each in a savepoint of its own (``MAX_GROUP`` at
the most): a write that fails is rolled back alone and its caller gets its
error, and nobody hears of a write before the transaction holding it
committed; if that commit fails, every write of it fails with that error.
With many chats writing at once this saves a commit (a WAL append) per write;
a write with nothing queued behind it runs alone, as before. While a beat's
end is held for lack of space, writes run one by one.

A caller that must not wait at all (a streaming beat) can ``submit`` a call
and get its outcome in a callback. A beat's end held for lack of space
(:meth:`Store.hold_beat_end`) is written by whichever later call first
finds room; what it committed is handed, on the trio side, to the callback
given with it, before the caller of that call resumes.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import outcome
import trio

from protocol import ChatMessage, LorebookInfo
from protocol import events as ev
from story import Card, Lorebook

from ._commands import current_command
from ._errors import StorageFull, StoreError
from ._records import AppendResult, Render
from ._store import Store, utc_now
from ._tx import FULL_MESSAGE, space_errors

log = logging.getLogger("troupe.store")

T = TypeVar("T")

Deliver = Callable[[outcome.Outcome[Any]], None]
"""Takes a call's outcome on the trio side."""

_Job = tuple[Callable[[], Any], trio.lowlevel.TrioToken, Deliver, bool]
"""A call, where its outcome goes, and whether it may share a transaction with others."""

Grouper = Callable[[Sequence[Callable[[], Any]]], list[outcome.Outcome[Any]]]
"""Runs several writes in one transaction; one outcome each, in order."""

MAX_GROUP = 64
"""Writes committed together at the most."""

Landed = Callable[[AppendResult], None]
"""Told, on the trio side, what a held beat end committed once it was written."""


class _Worker:
    """One thread running queued calls; each outcome goes back to the trio side."""

    def __init__(self, grouper: Grouper | None = None) -> None:
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._grouper = grouper
        self._thread = threading.Thread(target=self._loop, name="troupe-store", daemon=True)
        self._thread.start()
        self.calls = 0
        self.groups = 0
        """Transactions that held more than one write."""
        self.grouped = 0
        """Writes that shared a transaction with others."""

    def _loop(self) -> None:
        ahead: list[_Job | None] = []
        while True:
            job = ahead.pop() if ahead else self._jobs.get()
            if job is None:
                return
            group = [job]
            if job[3] and self._grouper is not None:
                while len(group) < MAX_GROUP:
                    try:
                        more = self._jobs.get_nowait()
                    except queue.Empty:
                        break
                    if more is None or not more[3]:
                        ahead.append(more)  # runs next, after the group: order is kept
                        break
                    group.append(more)
            results: list[outcome.Outcome[Any]]
            if len(group) == 1 or self._grouper is None:
                results = [outcome.capture(job[0])]
            else:
                results = self._grouper([fn for fn, *_ in group])
                self.groups += 1
                self.grouped += len(group)
            # One wake-up of the trio side per group, not one per write: each costs
            # the loop a syscall and the GIL a hand-over.
            token = group[0][1]
            if all(job[1] is token for job in group):
                done = [(job[2], result) for job, result in zip(group, results, strict=True)]
                self._deliver(token, _deliver_all, done)
            else:
                for (_, its, deliver, _group), result in zip(group, results, strict=True):
                    self._deliver(its, deliver, result)

    @staticmethod
    def _deliver(token: trio.lowlevel.TrioToken, fn: Callable[[Any], None], arg: Any) -> None:
        try:
            token.run_sync_soon(fn, arg)
        except trio.RunFinishedError:
            pass  # the trio run is gone; nobody is waiting any more

    def submit(
        self,
        fn: Callable[[], T],
        deliver: Callable[[outcome.Outcome[T]], None],
        *,
        group: bool = False,
    ) -> None:
        """Queue ``fn``; ``deliver(outcome)`` runs on the trio side when it has run.

        ``group``: ``fn`` only writes through the store's own transactions, so
        it may share one with the writes queued next to it.
        """
        if not self._thread.is_alive():
            raise trio.ClosedResourceError("the store is closed")
        self.calls += 1
        self._jobs.put((fn, trio.lowlevel.current_trio_token(), deliver, group))

    async def call(
        self,
        fn: Callable[[], T],
        then: Callable[[T], None] | None = None,
        *,
        group: bool = False,
    ) -> T:
        await trio.lowlevel.checkpoint_if_cancelled()
        task = trio.lowlevel.current_task()

        def wake(result: outcome.Outcome[T]) -> None:
            if then is not None and isinstance(result, outcome.Value):
                # Here, not in the waiting task: callbacks run in the order the store ran
                # the calls, while woken tasks resume in any order.
                try:
                    then(result.value)
                except Exception as exc:
                    result = outcome.Error(exc)
            trio.lowlevel.reschedule(task, result)

        self.submit(fn, wake, group=group)
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
        self._worker = _Worker(self._together)
        self._closed = False
        self._on_landed: dict[int, Landed] = {}

    def _job(self, fn: Callable[[], T]) -> Callable[[], T]:
        """``fn``, followed on the store's thread by handing over the held ends it wrote."""
        token = trio.lowlevel.current_trio_token()
        command = current_command.get()  # read here, on the caller's side

        def job() -> T:
            try:
                if command is None:
                    return fn()
                with self.store.commanding(command):
                    return fn()
            finally:
                landed = self.store.landed()
                if landed:
                    try:
                        token.run_sync_soon(self._land, landed)
                    except trio.RunFinishedError:
                        pass  # nobody is left to tell; the ends are written all the same

        return job

    def _together(self, fns: Sequence[Callable[[], Any]]) -> list[outcome.Outcome[Any]]:
        """Run writes in one transaction, each in a savepoint; on the store's thread."""
        store = self.store
        if store.held_beats():  # a held beat end goes first, and alone: one by one
            return [outcome.capture(fn) for fn in fns]
        conn = store.conn
        results: list[outcome.Outcome[Any]] = []
        try:
            with store.transaction():
                for fn in fns:
                    results.append(outcome.capture(_savepoint, store, fn))
                    if not conn.in_transaction:
                        # The whole transaction is gone: SQLite rolled it back (a full
                        # disk), or the connection to PostgreSQL was lost.
                        raise _lost(results[-1])
        except BaseException as exc:  # nothing of the group is written
            # An outcome can be unwrapped once: each caller gets one of its own.
            kept: list[outcome.Outcome[Any]] = [
                r if isinstance(r, outcome.Error) else outcome.Error(exc) for r in results
            ]
            return kept + [outcome.Error(exc) for _ in range(len(fns) - len(results))]
        return results

    def _land(self, landed: list[tuple[int, AppendResult]]) -> None:
        for beat_id, result in landed:
            then = self._on_landed.pop(beat_id, None)
            if then is None:
                continue
            try:
                then(result)
            except Exception:
                log.exception("telling that beat %d's end was written failed", beat_id)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(store, *args)`` on the store's thread and return (or raise) its result."""
        if self._closed:
            raise trio.ClosedResourceError("the store is closed")
        return await self._worker.call(self._job(lambda: fn(self.store, *args)))

    async def commit(self, fn: Callable[..., T], publish: Callable[[T], None], *args: Any) -> T:
        """Run ``fn(store, *args)`` as :meth:`run` does; ``publish(result)`` before it returns.

        ``publish`` runs on the trio side as soon as the store answers, in the
        order the store ran its calls, whatever order the callers then resume
        in: what a chat commits is published in ``seq`` order, with no gap. It
        is not called when ``fn`` raised; when it raises, the caller gets that.
        """
        if self._closed:
            raise trio.ClosedResourceError("the store is closed")
        return await self._worker.call(
            self._job(lambda: fn(self.store, *args)), publish, group=True
        )

    async def append(self, *events: ev.Event, render: Render | None = None) -> AppendResult:
        """:meth:`Store.append` on the store's thread (sharing a transaction, see above)."""
        if self._closed:
            raise trio.ClosedResourceError("the store is closed")
        return await self._worker.call(
            self._job(lambda: self.store.append(*events, render=render)), group=True
        )

    async def record(self, messages: Sequence[ChatMessage]) -> tuple[ChatMessage, ...]:
        """:meth:`Store.record` on the store's thread."""
        return await self.run(Store.record, messages)

    async def checkpoint_beat(self, beat_id: int, chat_id: str, text: str) -> None:
        """:meth:`Store.checkpoint_beat` on the store's thread."""
        await self.run(Store.checkpoint_beat, beat_id, chat_id, text)

    async def card_of(self, bot_id: str) -> Card | None:
        """:meth:`Store.card_of` on the store's thread."""
        return await self.run(Store.card_of, bot_id)

    async def avatar_of(self, bot_id: str) -> tuple[bytes, str] | None:
        """:meth:`Store.avatar_of` on the store's thread."""
        return await self.run(Store.avatar_of, bot_id)

    async def lorebook_of(self, lorebook_id: str) -> Lorebook | None:
        """:meth:`Store.lorebook_of` on the store's thread."""
        return await self.run(Store.lorebook_of, lorebook_id)

    async def list_lorebooks(self) -> list[LorebookInfo]:
        """:meth:`Store.list_lorebooks` on the store's thread."""
        return await self.run(Store.list_lorebooks)

    def submit(
        self, fn: Callable[..., T], then: Callable[[outcome.Outcome[T]], None], *args: Any
    ) -> None:
        """Queue ``fn(store, *args)`` without waiting; ``then(outcome)`` on the trio side later.

        For a caller that must not wait for the store, however busy it is (a
        beat's checkpoints and its end): the call still runs, in order with
        every other, and its outcome, value or error, is handed to ``then``.
        """
        if self._closed:
            raise trio.ClosedResourceError("the store is closed")
        self._worker.submit(self._job(lambda: fn(self.store, *args)), then)

    def hold_beat_end(self, event: ev.AssistantTurn, render: Render | None, then: Landed) -> None:
        """:meth:`Store.hold_beat_end`, queued, not awaited; ``then(result)`` once it is written.

        Synchronous on purpose: a beat calls it when its end could not be
        written, and must neither wait for the store nor be cancelled then.
        """
        if event.started_id is None:
            raise ValueError("only a streamed beat's end (with its started_id) can be held")
        beat_id = event.started_id

        def queued(result: outcome.Outcome[bool]) -> None:
            if isinstance(result, outcome.Error):
                self._on_landed.pop(beat_id, None)
                log.error("holding beat %d's end failed", beat_id, exc_info=result.error)

        self.submit(Store.hold_beat_end, queued, event, render)
        self._on_landed[beat_id] = then

    async def aclose(self) -> None:
        """Close the database (after the calls already queued) and end the thread."""
        if self._closed:
            return
        self._closed = True
        try:
            with trio.CancelScope(shield=True):
                await self._worker.call(self._job(self.store.close))
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
            "group_commits": self._worker.groups,
            "grouped_writes": self._worker.grouped,
            **self.store.counters(),
        }


def _lost(last: outcome.Outcome[Any]) -> BaseException:
    """Why a group's transaction ended under it: the store's error that ended it."""
    if isinstance(last, outcome.Error) and isinstance(last.error, StoreError):
        return last.error
    return StorageFull(FULL_MESSAGE)


def _deliver_all(done: list[tuple[Deliver, outcome.Outcome[Any]]]) -> None:
    """Hand each outcome of a group to its caller, in the order the store ran them."""
    for deliver, result in done:
        try:
            deliver(result)
        except Exception:  # one caller's trouble must not leave the others waiting
            log.exception("handing a store call's outcome over failed")


def _savepoint(store: Store, fn: Callable[[], T]) -> T:
    """``fn()`` in a savepoint: rolled back alone if it raises; a full disk is ``StorageFull``.

    The store's own, so that what ``fn`` taught the store about its chats goes with it.
    """
    with space_errors(store.conn), store.transaction():
        return fn()


@asynccontextmanager
async def open_store(
    path: str | Path,
    *,
    data_dir: str | Path | None = None,
    keep_snapshots: int = 5,
    now: Callable[[], str] = utc_now,
    recover: bool = True,
) -> AsyncIterator[AsyncStore]:
    """Open the store for a block; migrations and crash recovery run off the trio loop.

    ``recover=False`` leaves the beats a crash left open alone (a cluster node ends
    only those of the chats it comes to own: ``Store.recover``).
    """
    store = await trio.to_thread.run_sync(
        lambda: Store.open(
            path, data_dir=data_dir, keep_snapshots=keep_snapshots, now=now, recover=recover
        )
    )
    astore = AsyncStore(store)
    try:
        yield astore
    finally:
        await astore.aclose()
