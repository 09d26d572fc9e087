"""The store: append events with their projection and chat messages, rewind, recover.

A plain synchronous class on one apsw connection, so it can be tested
without trio; :mod:`store._async` runs it on one thread for the trio side.
Every append is one transaction: the log rows, their projection changes and
the chat messages they produce (stamped with the chat's next ``seq``) commit
together or not at all. A beat's end that did not fit on a full disk is held
and written first by the next write that can (see :meth:`Store.hold_beat_end`).

The same class runs on PostgreSQL when opened with a ``postgresql://`` URL:
its connection is then a :class:`store._pg.PgConnection`, which speaks the
store's SQL (see docs/scale-out.md). Where several processes share that
database, :attr:`Store.fence` lets the caller refuse a chat's writes inside
their own transaction.
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import apsw

from protocol import (
    YOU_ID,
    BranchInfo,
    ChatMessage,
    EventPayloadError,
    checked_payload,
)
from protocol import events as ev

from . import _history, _outbox, _schema
from ._branches import (
    STRUCTURAL,
    DecodedEvents,
    beat_alternatives,
    branch_path,
    keep_view,
    list_branches,
    on_path,
    path_sql,
    reproject_chat,
)
from ._commands import CommandRecord, CommandRun, answer_command, command_record, record_first
from ._conn import Connection
from ._errors import Invalid, NotFound, StorageFull, StoreError
from ._facts import KEEPS_FACTS, FactsCache, project_known
from ._library import Library
from ._pg import PgConnection, is_url
from ._project import HANDLERS, current_branch, seed_projections
from ._queries import Queries
from ._records import AppendResult, Render, RewindPreview, WireFrame
from ._rendering import beat_complete
from ._tx import first_write, transaction

log = logging.getLogger("troupe.store")

BUSY_TIMEOUT_MS = 5000
"""How long a write waits for another connection's lock (a backup, a second process)."""


def utc_now() -> str:
    """The current time, ISO 8601 in UTC, to the millisecond: the log's ``at``."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def connect(path: str | Path) -> apsw.Connection:
    """One connection to the database file with the settings the store relies on."""
    conn = apsw.Connection(str(path))
    conn.setbusytimeout(BUSY_TIMEOUT_MS)
    conn.execute("PRAGMA journal_mode = WAL")
    # In WAL mode, NORMAL syncs at checkpoints, not at every commit: a commit
    # survives a crash of the process (it is in the WAL before it returns), and
    # only a power cut or an OS crash can take the last few. FULL would fsync
    # every commit; docs/storage.md has the figures and the reasoning.
    conn.execute("PRAGMA synchronous = NORMAL")
    return conn


_OPENS_A_BRANCH: Final = frozenset(
    {"chat_created", "chat_rewound", "branch_forked", "branch_switched"}
)
"""Event kinds whose projection changes the chat's current branch: they belong to the new one."""


Fence = Callable[[object, str], None]
"""Called as ``fence(conn, chat_id)`` inside a write's transaction; raises ``Fenced`` to refuse."""


class Store(Queries, Library):
    """The event log and its projections in one SQLite file (or a PostgreSQL database).

    Not thread-safe by design: one owner at a time (the trio side goes
    through :class:`store.AsyncStore`, which calls it from one thread).
    """

    def __init__(
        self,
        conn: Connection,
        data_dir: Path,
        *,
        keep_snapshots: int = 5,
        keep_messages: int = _outbox.KEEP_MESSAGES,
        now: Callable[[], str] = utc_now,
    ) -> None:
        self.conn = conn
        self.data_dir = data_dir
        self.keep_snapshots = keep_snapshots
        self.keep_messages = keep_messages
        self.now = now
        self._counts = {"appended": 0, "recovered": 0, "rewinds": 0, "rebuilds": 0}
        self._last_rebuild_s = 0.0
        self._held: dict[int, tuple[ev.AssistantTurn, Render]] = {}
        self._landed: list[tuple[int, AppendResult]] = []
        self.decoded = DecodedEvents()
        """The events appended or replayed lately, decoded: a chat's replay reads these."""
        self.fence: Fence | None = None
        """Asked, inside every write's transaction, once for each chat it writes (its events
        and its chat messages), before the commit; it raises :class:`store.Fenced` to refuse
        the write, which then leaves nothing. ``conn`` is the store's connection: what it
        runs there runs in the write's transaction."""
        self.command: CommandRun | None = None
        """The command (with an id) whose call runs now: its first event records it.

        Set around one call by :class:`~store.AsyncStore` (from ``current_command``)
        or by :meth:`commanding`; a held beat end written meanwhile is not its.
        """
        self.accept_chat_id: Callable[[str], bool] | None = None
        """Which new chat ids this store may hand out; None: any.

        A cluster node hands out only ids of the shards it holds, so that the
        chats it creates are its own to write (docs/scale-out.md).
        """
        self._facts = FactsCache()
        """What appending to each chat needs to know, kept between appends (see ``_facts``).

        It follows the transactions opened with :meth:`transaction`; inside a
        caller's own (``transaction(store.conn)``), which it cannot follow, the
        tables are read.
        """

    @classmethod
    def open(
        cls,
        target: str | Path,
        *,
        data_dir: str | Path | None = None,
        keep_snapshots: int = 5,
        keep_messages: int = _outbox.KEEP_MESSAGES,
        now: Callable[[], str] = utc_now,
        recover: bool = True,
    ) -> Store:
        """Open or create the database, migrate it, and close the beats a crash left open.

        ``target`` is the SQLite file, or a ``postgresql://`` URL. ``data_dir``
        holds ``snapshots/`` (default: the database's folder; SQLite only).
        Where several processes share a PostgreSQL database, each opens it
        with ``recover=False`` and recovers the chats it owns.
        """
        conn: Connection
        if is_url(target):
            conn = PgConnection(str(target))
            folder = Path(data_dir) if data_dir is not None else Path()
        else:
            path = Path(target)
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = connect(path)
            folder = Path(data_dir) if data_dir is not None else path.parent
        try:
            needs_rebuild = _schema.migrate(conn)
            with transaction(conn):
                seed_projections(conn)
        except BaseException:
            conn.close()
            raise
        store = cls(
            conn,
            folder,
            keep_snapshots=keep_snapshots,
            keep_messages=keep_messages,
            now=now,
        )
        if needs_rebuild:
            store.rebuild()
        if recover:
            store.recover()
        return store

    def close(self) -> None:
        """Close the connection; the store is unusable afterwards.

        Beat ends still held for lack of space get one last try; those that
        still do not fit are recovered from their checkpoints on the next open.
        """
        with contextlib.suppress(StorageFull):
            self._write_held()
        self.conn.close()

    # --- writing ---

    def append(self, *events: ev.Event, render: Render | None = None) -> AppendResult:
        """Append events, their projection changes and ``render``'s messages, atomically.

        Every event is validated and checked against the current state before
        anything is kept: a bad one raises :class:`Invalid` or
        :class:`NotFound` and the whole call writes nothing. ``render`` is
        called inside the transaction with the new ids (it may query the
        store, which already shows the new events); each chat message it
        returns gets its chat's next seq and is returned stamped.

        On a full disk it raises :class:`StorageFull` and writes nothing; so
        it does while a beat's end is held and still does not fit.
        """
        self._write_held()
        return self._append(events, render)

    def _append(self, events: Sequence[ev.Event], render: Render | None) -> AppendResult:
        checked = []
        for event in events:
            if isinstance(event, ev.ChatRewound):
                raise Invalid("a chat is rewound with rewind(), which forks a branch")
            checked.append(self._checked(event))
        with self.transaction():
            ids = tuple([self._append_one(*one) for one in checked])
            messages = self._stamp(render(ids)) if render is not None else ()
        self._counts["appended"] += len(ids)
        return AppendResult(ids, messages)

    @staticmethod
    def _checked(event: ev.Event) -> tuple[ev.Event, str, str]:
        """The event, its kind and its payload as checked; bad payloads are ``invalid``."""
        try:
            return checked_payload(event)
        except EventPayloadError as exc:
            raise Invalid(str(exc)) from None

    def _append_one(self, event: ev.Event, kind: str, payload: str) -> int:
        """One checked event: its log row (the payload as it was checked) and its projection.

        A turn of a chat whose facts are known is projected without looking
        them up (:func:`project_known`); any other event by its handler, after
        which its chat's facts are dropped unless its kind keeps them.
        """
        conn = self.conn
        at = self.now()
        chat_id = ev.chat_of(event)
        facts = None
        branch = None
        if chat_id is not None:
            self._fence_chat(chat_id)
            facts = self._facts.get(conn, chat_id)
            branch = facts.branch if facts is not None else current_branch(conn, chat_id)
        conn.execute(
            "INSERT INTO event_log(at, chat_id, kind, payload, branch_id) VALUES (?, ?, ?, ?, ?)",
            (at, chat_id, kind, payload, branch),
        )
        event_id = conn.last_insert_rowid()
        if self.command is not None:
            record_first(conn, self.command, event_id)  # same transaction as the event
        self.decoded.keep(event_id, kind, payload, event)
        if facts is None or not project_known(conn, event_id, event, facts):
            HANDLERS[kind](conn, event_id, at, event)
            if kind not in KEEPS_FACTS:
                if chat_id is None:
                    self._facts.forget_all()
                else:
                    self._facts.forget(chat_id)
        if chat_id is not None and kind in _OPENS_A_BRANCH:
            # On the branch current once it applied: a fork's own event opens its branch.
            conn.execute(
                "UPDATE event_log SET branch_id = ? WHERE id = ?",
                (current_branch(conn, chat_id), event_id),
            )
        return event_id

    def transaction(self) -> AbstractContextManager[None]:
        """One transaction (a savepoint inside another), its facts kept only once it commits.

        Group writes in it (``with store.transaction(): store.append(...)``)
        to commit them together: what the appends learned about their chats
        is kept when it commits, dropped when it rolls back. A transaction
        opened straight on the connection works too, with the tables read at
        every append. Inside this one, appends must not run in a savepoint
        opened on the connection (``with conn:``): should it roll back while
        this one goes on, what they learned would stay.
        """
        return self._facts.transaction(self.conn)

    def forget_chat(self, chat_id: str) -> None:
        """Drop what the store keeps in memory about a chat; it is read again when needed.

        For whoever changes the chat's tables behind the store's back: another
        process that took the chat over, say. Rewinds, forks, switches and
        rebuilds drop it themselves.
        """
        self._facts.forget(chat_id)
        self.decoded.forget(chat_id)

    def forget_all(self) -> None:
        """Drop what the store keeps in memory about every chat."""
        self._facts.forget_all()
        self.decoded.forget()

    def record(self, messages: Sequence[ChatMessage]) -> tuple[ChatMessage, ...]:
        """Stamp and journal chat messages that no event produced (e.g. ``turn_settled``)."""
        self._write_held()
        with transaction(self.conn):
            stamped = self._stamp(messages)
        return stamped

    def _stamp(self, messages: Sequence[ChatMessage]) -> tuple[ChatMessage, ...]:
        for chat_id in dict.fromkeys(message.chat_id for message in messages):
            self._fence_chat(chat_id)
        return _outbox.stamp(self.conn, messages, self.keep_messages)

    def _fence_chat(self, chat_id: str) -> None:
        """Ask the fence, once per transaction, whether this chat may be written."""
        if self.fence is not None and first_write(self.conn, chat_id):
            self.fence(self.conn, chat_id)

    def last_seq(self, chat_id: str) -> int:
        """The seq of the chat's latest numbered message; 0 before the first."""
        return _outbox.last_seq(self.conn, chat_id)

    def messages_after(self, chat_id: str, seq: int) -> list[WireFrame] | None:
        """The chat's messages after ``seq`` as wire JSON, or None when a replay is impossible.

        None means the client needs a fresh ``chat_state``: some of the
        messages were pruned (the last 2000 per chat are kept), or ``seq`` is
        ahead of the chat.
        """
        return _outbox.messages_after(self.conn, chat_id, seq)

    def checkpoint_beat(self, beat_id: int, chat_id: str, text: str) -> None:
        """Keep a streaming beat's text so far, outside the log, for crash recovery.

        Cheap enough to call every second: one upserted row per beat, dropped
        when the beat's ``assistant_turn`` is appended. A checkpoint for a
        beat that is not open (it already ended) is ignored.
        """
        self._write_held()
        self._checkpoint(beat_id, chat_id, text)

    def _checkpoint(self, beat_id: int, chat_id: str, text: str) -> None:
        with transaction(self.conn):
            self.conn.execute(
                "INSERT INTO beat_checkpoints(beat_id, chat_id, text, at) "
                "SELECT ?, ?, ?, ? WHERE EXISTS "
                "(SELECT 1 FROM open_beats WHERE beat_id = ? AND chat_id = ?) "
                "ON CONFLICT(beat_id) DO UPDATE SET text = excluded.text, at = excluded.at",
                (beat_id, chat_id, text, self.now(), beat_id, chat_id),
            )

    def recover(self, accept: Callable[[str], bool] | None = None) -> list[str]:
        """End every beat left open (by a crash) as truncated, error ``interrupted``.

        Each gets its ``assistant_turn`` with the last checkpointed text (or
        nothing) and its ``beat_complete`` message, so clients see the beat
        end and the chat can take a new turn. ``accept``: only in the chats it
        accepts (a cluster node ends only the beats of the chats it now owns).
        Returns the chats whose beats were ended.
        """
        sql = (
            "SELECT b.beat_id, b.chat_id, b.speaker_id, b.user_turn_id, b.interjection_of, "
            "coalesce(c.text, '') FROM open_beats b "
            "LEFT JOIN beat_checkpoints c ON c.beat_id = b.beat_id"
        )
        open_beats = list(self.conn.execute(sql + " ORDER BY b.beat_id"))
        if accept is not None:
            open_beats = [row for row in open_beats if accept(row[1])]
        for beat_id, chat_id, speaker_id, user_turn_id, interjection_of, text in open_beats:
            end = ev.AssistantTurn(
                chat_id,
                speaker_id,
                user_turn_id,
                beat_id,
                text,
                truncated=True,
                error="interrupted",
                interjection_of=interjection_of,
            )
            self.append(end, render=_ending(end))
        self._counts["recovered"] += len(open_beats)
        return sorted({row[1] for row in open_beats})

    # --- beat ends held for lack of space ---

    def hold_beat_end(self, event: ev.AssistantTurn, render: Render | None = None) -> bool:
        """Keep a beat's end that could not be written until a write can; True if written now.

        ``render`` defaults to the beat's ``beat_complete``.

        Held ends are written, in order, at the start of every later write,
        before what that write asks; while they still do not fit, the write
        raises :class:`StorageFull` itself. So no message of the chat gets a
        seq before the beat's ``beat_complete`` does, and the chat works again
        as soon as space is freed. The results go to :meth:`landed`.

        Held ends live in memory. When one does not fit now, its whole text
        is also tried as the beat's checkpoint (an update of a row that is
        usually there already), so that if the process stops before space
        returns, recovery on the next open ends the beat with that text, or
        else with the last checkpoint that fitted.
        """
        if event.started_id is None:
            raise Invalid("only a streamed beat's end (with its started_id) can be held")
        self._held[event.started_id] = (event, render or _ending(event))
        try:
            self._write_held()
        except StorageFull:
            with contextlib.suppress(StorageFull):
                self._checkpoint(event.started_id, event.chat_id, event.text)
            return False
        return True

    def held_beats(self) -> list[int]:
        """The beats whose end is held, waiting for space."""
        return list(self._held)

    def landed(self) -> list[tuple[int, AppendResult]]:
        """The held beat ends written since the last call: ``(beat_id, result)``, oldest first."""
        landed, self._landed = self._landed, []
        return landed

    def _write_held(self) -> None:
        if not self._held:
            return
        command, self.command = self.command, None  # a held end belongs to no command
        try:
            self._write_held_ends()
        finally:
            self.command = command

    def _write_held_ends(self) -> None:
        for beat_id, (event, render) in list(self._held.items()):
            try:
                result = self._append((event,), render)
            except StorageFull:
                raise
            except StoreError as exc:
                # Only this store ends beats while it is open, so this cannot happen;
                # should it, one bad end must not refuse every later write.
                log.error("held end of beat %d dropped: %s", beat_id, exc)
                del self._held[beat_id]
                continue
            del self._held[beat_id]
            self._landed.append((beat_id, result))

    # --- commands with an id ---

    @contextlib.contextmanager
    def commanding(self, run: CommandRun | None) -> Iterator[None]:
        """Make the calls of the block ``run``'s: its first appended event records it."""
        before, self.command = self.command, run
        first = run.first_event_id if run is not None else None
        try:
            yield
        except BaseException:
            if run is not None:
                run.first_event_id = first  # what the block wrote was rolled back
            raise
        finally:
            self.command = before

    def command_record(self, chat_id: str, command_id: str) -> CommandRecord | None:
        """The record of a command that wrote, or None."""
        return command_record(self.conn, chat_id, command_id)

    def answer_command(self, chat_id: str, command_id: str, answer: str) -> None:
        """Keep a recorded command's direct answer (wire JSON), for its retries."""
        self._write_held()
        with transaction(self.conn):
            answer_command(self.conn, chat_id, command_id, answer)

    # --- new ids ---

    def new_bot_id(self, name: str) -> str:
        """A readable id for a new bot, from its name: ``mira``, then ``mira-2``...

        Deleted bots keep their ids, so an id is never handed out twice.
        """
        base = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:40] or "bot"
        if base == YOU_ID:
            base = "you-bot"
        candidate, n = base, 1
        while self._one("SELECT 1 FROM entities WHERE id = ?", candidate):
            n += 1
            candidate = f"{base}-{n}"
        return candidate

    def new_chat_id(self) -> str:
        """A chat id never used before: ``c1``, ``c2``, ...

        The counter is kept, so an id asked for but never used is skipped
        rather than handed out again.
        """
        row = self._one("SELECT value FROM meta WHERE key = 'chats'")
        n = int(row[0]) + 1 if row else 1
        self._write_held()
        accept = self.accept_chat_id
        while self._one("SELECT 1 FROM chats WHERE id = ?", f"c{n}") or (
            accept is not None and not accept(f"c{n}")
        ):
            n += 1
        with transaction(self.conn):
            self.conn.execute(
                "INSERT INTO meta(key, value) VALUES ('chats', ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (str(n),),
            )
        return f"c{n}"

    # --- rewind, branches and rebuild ---

    def rewind_preview(self, chat_id: str, event_id: int) -> RewindPreview:
        """What rewinding the chat to ``event_id`` would move to a branch: its later events."""
        self._check_point(chat_id, event_id)
        where, args = path_sql(branch_path(self.conn, chat_id))
        rows = self.conn.execute(
            "SELECT kind, count(*) FROM event_log WHERE chat_id = ? AND id > ? "
            f"AND superseded_by IS NULL AND rewound_by IS NULL AND {where} "
            "GROUP BY kind ORDER BY kind",
            (chat_id, event_id, *args),
        )
        by_kind = {kind: count for kind, count in rows if kind not in STRUCTURAL}
        return RewindPreview(sum(by_kind.values()), by_kind)

    def _check_point(self, chat_id: str, event_id: int) -> None:
        """A fork point: an event of the chat on its current branch, with no beat streaming."""
        if self.get_chat(chat_id) is None:
            raise NotFound(f"there is no chat {chat_id!r}")
        row = self._one("SELECT chat_id, branch_id FROM event_log WHERE id = ?", event_id)
        if row is None or row[0] != chat_id:
            raise NotFound(f"event {event_id} is not an event of chat {chat_id!r}")
        if not on_path(branch_path(self.conn, chat_id), row[1], event_id):
            raise Invalid(
                f"event {event_id} is on another branch of chat {chat_id!r}; switch to it first"
            )
        if self.open_beats(chat_id):
            raise Invalid(f"a beat of chat {chat_id!r} is still streaming; cancel it first")

    def rewind(self, chat_id: str, event_id: int) -> int:
        """Rewind a chat to just after ``event_id``; returns the ``chat_rewound`` event's id.

        The rewind is a fork: ``chat_rewound`` starts a new branch after
        ``event_id`` and makes it current, and the chat alone is re-projected
        from its own events. What came after stays on the branch that was
        current (``switch_branch`` goes back to it); other chats are untouched.
        """
        self._write_held()
        self._check_point(chat_id, event_id)
        rewind_id = self._branch(ev.ChatRewound(chat_id, event_id))
        self._counts["rewinds"] += 1
        return rewind_id

    def fork(self, chat_id: str, at_event_id: int, reason: ev.BranchReason) -> int:
        """Start a branch after ``at_event_id`` and make it current; returns its id."""
        self._write_held()
        self._check_point(chat_id, at_event_id)
        return self._branch(ev.BranchForked(chat_id, at_event_id, reason))

    def switch_branch(self, chat_id: str, branch_id: int) -> int:
        """Make a branch of the chat current; returns the ``branch_switched`` event's id."""
        self._write_held()
        if self.get_chat(chat_id) is None:
            raise NotFound(f"there is no chat {chat_id!r}")
        if self.open_beats(chat_id):
            raise Invalid(f"a beat of chat {chat_id!r} is still streaming; cancel it first")
        return self._branch(ev.BranchSwitched(chat_id, branch_id))

    def _branch(self, event: ev.ChatRewound | ev.BranchForked | ev.BranchSwitched) -> int:
        self._facts.forget(event.chat_id)
        with self.transaction():
            keep_view(self.conn, event.chat_id)
            event_id = self._append_one(*self._checked(event))
            reproject_chat(self.conn, event.chat_id, self.decoded)
        self._counts["appended"] += 1
        return event_id

    def branches(self, chat_id: str) -> list[BranchInfo]:
        """The chat's branches, oldest first (the root first): see :func:`list_branches`."""
        return list_branches(self.conn, chat_id)

    def current_branch(self, chat_id: str) -> int:
        """The chat's current branch."""
        return current_branch(self.conn, chat_id)

    def on_current_branch(self, chat_id: str, event_id: int) -> bool:
        """Whether an event of the chat is on its current branch's path."""
        row = self._one("SELECT chat_id, branch_id FROM event_log WHERE id = ?", event_id)
        if row is None or row[0] != chat_id:
            return False
        return on_path(branch_path(self.conn, chat_id), row[1], event_id)

    def branch_of(self, event_id: int) -> int | None:
        """The branch an event was written on (None for a world-wide event)."""
        row = self._one("SELECT branch_id FROM event_log WHERE id = ?", event_id)
        return int(row[0]) if row and row[0] is not None else None

    def previous_on_branch(self, chat_id: str, event_id: int) -> int | None:
        """The chat's last event before ``event_id`` on its current branch's path."""
        where, args = path_sql(branch_path(self.conn, chat_id))
        row = self._one(
            f"SELECT max(id) FROM event_log WHERE chat_id = ? AND id < ? AND {where}",
            chat_id,
            event_id,
            *args,
        )
        return int(row[0]) if row and row[0] is not None else None

    def alternatives(self, chat_id: str, since: int = 0) -> dict[int, tuple[int, ...]]:
        """Each beat's alternatives, oldest first, itself included (see ``_branches``);
        only the beats answering user turns from ``since`` on."""
        return beat_alternatives(self.conn, chat_id, since)

    def rebuild(self) -> int:
        """Recompute every projection and visibility mark from the log alone.

        Returns how many events were replayed. The result must equal what
        the appends built one by one; the property tests hold it to that.
        """
        started = time.perf_counter()
        self._facts.forget_all()
        with transaction(self.conn):
            _history.recompute_rewinds(self.conn)
            replayed = _history.reproject(self.conn)
        self._counts["rebuilds"] += 1
        self._last_rebuild_s = time.perf_counter() - started
        return replayed

    def snapshot(self, label: str = "manual") -> Path:
        """Copy the database into ``<data>/snapshots/``, keeping the newest N; returns the copy.

        SQLite only: a PostgreSQL database is backed up with PostgreSQL's own tools.
        """
        if not isinstance(self.conn, apsw.Connection):
            raise Invalid(
                "snapshots are copies of a SQLite file; back a PostgreSQL store up with "
                "pg_dump or the server's own backups"
            )
        return _history.snapshot(
            self.conn, self.data_dir / "snapshots", label, self.keep_snapshots
        )

    def snapshots(self) -> list[Path]:
        """The snapshot files kept, oldest first."""
        return _history.snapshots(self.data_dir / "snapshots")

    def counters(self) -> dict[str, Any]:
        """Counters since opening (appends, recoveries, rewinds, rebuilds, held ends); no table."""
        return {
            **self._counts,
            "held": len(self._held),
            "last_rebuild_s": round(self._last_rebuild_s, 4),
        }

    def statistics(self) -> dict[str, Any]:
        """The counters, the log's size and the schema version."""
        return {
            **self.counters(),
            "events": self.event_count(),
            "schema_version": _schema.version(self.conn),
        }


def _ending(end: ev.AssistantTurn) -> Render:
    """Renders a beat's end as its ``beat_complete``, however it ended."""
    return lambda ids: [beat_complete(end, ids[0])]
