"""The store: append events with their projection and outgoing messages, and query.

A plain synchronous class on one apsw connection; :mod:`store._async` runs it
on one worker thread for trio. Every append is one transaction: the log rows,
their projection changes and the chat messages they produce (stamped with the
chat's next ``seq``) commit together or not at all.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import apsw
import attrs

from protocol import (
    YOU_ID,
    Artifacts,
    BeatComplete,
    Bot,
    Chat,
    ChatMessage,
    Edge,
    Entity,
    EventPayloadError,
    Memory,
    Scene,
    Turn,
    check_event,
    converter,
    dump_event,
    load_event,
    to_wire,
)
from protocol import events as ev

from . import _schema
from ._errors import Invalid, NotFound, StoreError
from ._project import DEFAULT_EDGE, HANDLERS, seed_projections

log = logging.getLogger("troupe.store")

Render = Callable[[tuple[int, ...]], Sequence[ChatMessage]]

KEEP_MESSAGES = 2000
"""Outgoing messages kept per chat for resuming clients."""


def utc_now() -> str:
    """The current time, ISO 8601 in UTC."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@attrs.frozen
class AppendResult:
    """The ids the appended events got, and the chat messages stamped with their seq."""

    ids: tuple[int, ...]
    messages: tuple[ChatMessage, ...] = ()


@attrs.frozen
class StoredEvent:
    """One row of the log."""

    id: int
    at: str
    chat_id: str | None
    kind: str
    event: ev.Event
    superseded_by: int | None
    rewound_by: int | None


@attrs.frozen
class RewindPreview:
    """What a rewind would remove from the chat's timeline, by kind."""

    total: int
    by_kind: dict[str, int]


@attrs.frozen
class WorldEventRow:
    """A world event as the turn flow needs it."""

    id: int
    chat_id: str
    title: str
    description: str
    status: str
    artifacts: Artifacts


class Store:
    """The event log and its projections in one SQLite file."""

    def __init__(
        self,
        conn: apsw.Connection,
        data_dir: Path,
        keep_snapshots: int = 5,
        now: Callable[[], str] = utc_now,
    ) -> None:
        self.conn = conn
        self.data_dir = data_dir
        self.keep_snapshots = keep_snapshots
        self.now = now
        self.appended = 0
        self.recovered = 0

    @classmethod
    def open(
        cls,
        path: str | Path,
        *,
        data_dir: str | Path | None = None,
        keep_snapshots: int = 5,
        now: Callable[[], str] = utc_now,
        recover: bool = True,
    ) -> Store:
        """Open (or create) the database, migrate it, and close beats a crash left open."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = apsw.Connection(str(path))
        conn.setbusytimeout(5000)
        conn.execute("PRAGMA journal_mode = WAL")
        # NORMAL in WAL mode: a commit survives a crash of the process (the WAL is
        # written before the commit returns); only a power loss may take the last ones.
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = OFF")
        _schema.migrate(conn)
        with conn:
            seed_projections(conn)
        store = cls(conn, Path(data_dir) if data_dir else path.parent, keep_snapshots, now)
        if recover:
            store.recover()
        return store

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()

    # --- writing ---

    def append(self, *events: ev.Event, render: Render | None = None) -> AppendResult:
        """Append events (and the messages ``render`` builds from their ids) atomically."""
        checked = []
        for event in events:
            try:
                checked.append(check_event(event))
            except EventPayloadError as exc:
                raise Invalid(str(exc)) from None
        with self.conn:
            ids = tuple(self._append_one(event) for event in checked)
            messages = self._stamp(render(ids)) if render is not None else ()
        self.appended += len(ids)
        return AppendResult(ids, messages)

    def _append_one(self, event: ev.Event) -> int:
        kind, payload = dump_event(event)
        at = self.now()
        self.conn.execute(
            "INSERT INTO event_log(at, chat_id, kind, payload) VALUES (?, ?, ?, ?)",
            (at, ev.chat_of(event), kind, payload),
        )
        event_id = self.conn.last_insert_rowid()
        HANDLERS[kind](self.conn, event_id, at, event)
        return event_id

    def record(self, messages: Sequence[ChatMessage]) -> tuple[ChatMessage, ...]:
        """Stamp and keep chat messages that come from no event (e.g. turn_settled)."""
        with self.conn:
            return self._stamp(messages)

    def _stamp(self, messages: Sequence[ChatMessage]) -> tuple[ChatMessage, ...]:
        stamped = []
        for message in messages:
            chat_id = message.chat_id
            row = self._one("SELECT seq FROM chat_seq WHERE chat_id = ?", chat_id)
            seq = (row[0] if row else 0) + 1
            self.conn.execute(
                "INSERT INTO chat_seq(chat_id, seq) VALUES (?, ?) "
                "ON CONFLICT(chat_id) DO UPDATE SET seq = excluded.seq",
                (chat_id, seq),
            )
            message = attrs.evolve(message, seq=seq)  # type: ignore[call-arg]
            self.conn.execute(
                "INSERT INTO outbox(chat_id, seq, payload) VALUES (?, ?, ?)",
                (chat_id, seq, json.dumps(to_wire(message), ensure_ascii=False)),
            )
            if seq % 100 == 0:
                self.conn.execute(
                    "DELETE FROM outbox WHERE chat_id = ? AND seq <= ?",
                    (chat_id, seq - KEEP_MESSAGES),
                )
            stamped.append(message)
        return tuple(stamped)

    def checkpoint_beat(self, beat_id: int, chat_id: str, text: str) -> None:
        """Keep the text of a beat streamed so far, outside the log, for crash recovery."""
        with self.conn:
            self.conn.execute(
                "INSERT INTO beat_checkpoints(beat_id, chat_id, text, at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(beat_id) DO UPDATE SET text = excluded.text, at = excluded.at",
                (beat_id, chat_id, text, self.now()),
            )

    def recover(self) -> list[int]:
        """Close every beat left open (by a crash) as truncated, error ``interrupted``."""
        closed = []
        for beat_id, chat_id, speaker_id, user_turn_id, interjection_of in list(
            self.conn.execute(
                "SELECT beat_id, chat_id, speaker_id, user_turn_id, interjection_of "
                "FROM open_beats ORDER BY beat_id"
            )
        ):
            row = self._one("SELECT text FROM beat_checkpoints WHERE beat_id = ?", beat_id)
            text = row[0] if row else ""
            event = ev.AssistantTurn(
                chat_id,
                speaker_id,
                user_turn_id,
                beat_id,
                text,
                truncated=True,
                error="interrupted",
                interjection_of=interjection_of,
            )
            self.append(
                event,
                render=lambda ids, b=beat_id, c=chat_id, s=speaker_id, t=text, i=interjection_of: [
                    BeatComplete(c, b, ids[0], s, t, True, i, "interrupted")
                ],
            )
            closed.append(beat_id)
        self.recovered += len(closed)
        return closed

    def new_bot_id(self, name: str) -> str:
        """A readable unique id for a new bot, from its name."""
        base = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:40] or "bot"
        if base == YOU_ID:
            base = "you-bot"
        candidate, n = base, 1
        while self._one("SELECT 1 FROM entities WHERE id = ?", candidate):
            n += 1
            candidate = f"{base}-{n}"
        return candidate

    def new_chat_id(self) -> str:
        """A new chat id: ``c1``, ``c2``, ..."""
        row = self._one("SELECT value FROM meta WHERE key = 'chats'")
        n = int(row[0]) + 1 if row else 1
        while self._one("SELECT 1 FROM event_log WHERE kind = 'chat_created' AND chat_id = ?",
                        f"c{n}"):
            n += 1
        with self.conn:
            self.conn.execute(
                "INSERT INTO meta(key, value) VALUES ('chats', ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (str(n),),
            )
        return f"c{n}"

    # --- reading ---

    def _one(self, sql: str, *args: object) -> Any:
        for row in self.conn.execute(sql, args):
            return row
        return None

    def get_you(self) -> Entity:
        """The person playing."""
        name, persona = self._one("SELECT name, persona FROM entities WHERE id = ?", YOU_ID)
        return Entity(YOU_ID, name, persona)

    _BOT = "SELECT id, name, persona, greeting FROM entities WHERE kind = 'bot' AND deleted = 0"

    def get_bot(self, bot_id: str) -> Bot | None:
        """A live bot, or None."""
        row = self._one(self._BOT + " AND id = ?", bot_id)
        return Bot(*row) if row else None

    def list_bots(self) -> list[Bot]:
        """Every live bot, oldest first."""
        return [Bot(*row) for row in self.conn.execute(self._BOT + " ORDER BY created_event")]

    _CHAT = "SELECT id, title, host_bot_id, guest_bot_id, location, created_at FROM chats"

    def get_chat(self, chat_id: str) -> Chat | None:
        """A chat, or None."""
        row = self._one(self._CHAT + " WHERE id = ?", chat_id)
        return Chat(*row) if row else None

    def list_chats(self) -> list[Chat]:
        """Every chat, newest first."""
        return [Chat(*row) for row in self.conn.execute(self._CHAT + " ORDER BY created_event DESC")]

    _TURN = (
        "SELECT event_id, kind, speaker_id, text, truncated, interjection_of, user_turn_id "
        "FROM timeline"
    )

    @staticmethod
    def _turn(row: Sequence[Any]) -> Turn:
        event_id, kind, speaker, text, truncated, interjection_of, user_turn_id = row
        return Turn(event_id, kind, speaker, text, bool(truncated), interjection_of, user_turn_id)

    def timeline(self, chat_id: str) -> list[Turn]:
        """The chat's visible turns, oldest first."""
        rows = self.conn.execute(self._TURN + " WHERE chat_id = ? ORDER BY event_id", (chat_id,))
        return [self._turn(row) for row in rows]

    def recent_dialogue(
        self, chat_id: str, limit: int = 20, after_event_id: int | None = None
    ) -> list[Turn]:
        """The chat's newest ``limit`` visible turns (after ``after_event_id``), oldest first."""
        rows = list(
            self.conn.execute(
                self._TURN + " WHERE chat_id = ? AND event_id > ? ORDER BY event_id DESC LIMIT ?",
                (chat_id, after_event_id or 0, limit),
            )
        )
        return [self._turn(row) for row in reversed(rows)]

    def latest_assistant_turn(self, chat_id: str) -> Turn | None:
        """The chat's latest visible turn if it is an assistant turn... or the latest one."""
        row = self._one(
            self._TURN + " WHERE chat_id = ? AND kind = 'assistant' ORDER BY event_id DESC LIMIT 1",
            chat_id,
        )
        return self._turn(row) if row else None

    def get_event(self, event_id: int) -> StoredEvent | None:
        """One row of the log, payload decoded."""
        row = self._one(
            "SELECT id, at, chat_id, kind, payload, superseded_by, rewound_by "
            "FROM event_log WHERE id = ?",
            event_id,
        )
        if row is None:
            return None
        id_, at, chat_id, kind, payload, superseded_by, rewound_by = row
        return StoredEvent(id_, at, chat_id, kind, load_event(kind, payload), superseded_by,
                           rewound_by)

    def event_count(self) -> int:
        """How many events the log holds."""
        return int(self._one("SELECT count(*) FROM event_log")[0])

    def open_beats(self, chat_id: str) -> list[int]:
        """Beats of the chat that started and have not ended."""
        rows = self.conn.execute(
            "SELECT beat_id FROM open_beats WHERE chat_id = ? ORDER BY beat_id", (chat_id,)
        )
        return [row[0] for row in rows]

    def get_edge(self, source_id: str, target_id: str) -> Edge:
        """The edge between two entities; the neutral default when none exists yet."""
        row = self._one(
            "SELECT affinity, trust, summary, facts FROM edges WHERE source_id = ? AND target_id = ?",
            source_id,
            target_id,
        )
        if row is None:
            return Edge(source_id, target_id, *DEFAULT_EDGE, "", ())
        affinity, trust, summary, facts = row
        return Edge(source_id, target_id, affinity, trust, summary, tuple(json.loads(facts)))

    def edges_among(self, entity_ids: Iterable[str]) -> list[Edge]:
        """Every directed edge among these entities (defaults for the missing ones)."""
        ids = list(dict.fromkeys(entity_ids))
        return [self.get_edge(a, b) for a in ids for b in ids if a != b]

    _MEMORY = "SELECT id, bot_id, chat_id, text, significance, pinned FROM memories"

    @staticmethod
    def _memory(row: Sequence[Any]) -> Memory:
        id_, bot_id, chat_id, text, significance, pinned = row
        return Memory(id_, bot_id, chat_id, text, significance, bool(pinned))

    def get_memory(self, memory_id: int) -> Memory | None:
        """A memory, or None."""
        row = self._one(self._MEMORY + " WHERE id = ?", memory_id)
        return self._memory(row) if row else None

    def list_memories(self, bot_id: str, chat_id: str | None = None) -> list[Memory]:
        """A bot's memories (of one chat), oldest first."""
        if chat_id is None:
            rows = self.conn.execute(self._MEMORY + " WHERE bot_id = ? ORDER BY id", (bot_id,))
        else:
            rows = self.conn.execute(
                self._MEMORY + " WHERE bot_id = ? AND chat_id = ? ORDER BY id", (bot_id, chat_id)
            )
        return [self._memory(row) for row in rows]

    def pinned_memories(self, bot_id: str, chat_id: str | None = None) -> list[Memory]:
        """A bot's pinned memories (of one chat), oldest first."""
        sql = self._MEMORY + " WHERE bot_id = ? AND pinned = 1"
        args: tuple[object, ...] = (bot_id,)
        if chat_id is not None:
            sql += " AND chat_id = ?"
            args += (chat_id,)
        return [self._memory(row) for row in self.conn.execute(sql + " ORDER BY id", args)]

    def auto_pinned(self, bot_id: str) -> list[Memory]:
        """A bot's automatically pinned memories, oldest first."""
        rows = self.conn.execute(
            self._MEMORY + " WHERE bot_id = ? AND pinned = 1 AND pinned_by = 'auto' ORDER BY id",
            (bot_id,),
        )
        return [self._memory(row) for row in rows]

    def relevant_memories(
        self, bot_id: str, text: str, limit: int = 5, exclude_pinned: bool = True
    ) -> list[Memory]:
        """The bot's memories that best match ``text`` (full-text search, best first)."""
        words = list(dict.fromkeys(w.lower() for w in re.findall(r"\w{3,}", text)))[:24]
        if not words:
            return []
        query = " OR ".join(f'"{w}"' for w in words)
        sql = (
            "SELECT m.id, m.bot_id, m.chat_id, m.text, m.significance, m.pinned "
            "FROM memories_fts JOIN memories m ON m.id = memories_fts.rowid "
            "WHERE memories_fts MATCH ? AND m.bot_id = ?"
        )
        if exclude_pinned:
            sql += " AND m.pinned = 0"
        sql += " ORDER BY bm25(memories_fts) LIMIT ?"
        return [self._memory(row) for row in self.conn.execute(sql, (query, bot_id, limit))]

    def active_scene(self, chat_id: str) -> Scene | None:
        """The chat's open scene, or None."""
        row = self._one(
            "SELECT id, location, opened_at FROM scenes WHERE chat_id = ? AND closed_at IS NULL",
            chat_id,
        )
        return Scene(*row) if row else None

    def closed_scenes(self, chat_id: str) -> list[tuple[Scene, dict[str, str]]]:
        """The chat's closed scenes with their per-witness summaries, oldest first."""
        out = []
        for id_, location, opened in list(self.conn.execute(
            "SELECT id, location, opened_at FROM scenes WHERE chat_id = ? "
            "AND closed_at IS NOT NULL ORDER BY id",
            (chat_id,),
        )):
            summaries = dict(self.conn.execute(
                "SELECT bot_id, text FROM scene_summaries WHERE scene_id = ?", (id_,)
            ))
            out.append((Scene(id_, location, opened), summaries))
        return out

    def world_events(
        self, chat_id: str, statuses: Sequence[str] = ("planned", "active")
    ) -> list[WorldEventRow]:
        """The chat's world events with these statuses, oldest first."""
        marks = ",".join("?" for _ in statuses)
        rows = self.conn.execute(
            "SELECT id, chat_id, title, description, status, artifacts FROM world_events "
            f"WHERE chat_id = ? AND status IN ({marks}) ORDER BY id",
            (chat_id, *statuses),
        )
        return [
            WorldEventRow(i, c, t, d, s, converter.structure(json.loads(a), Artifacts))
            for i, c, t, d, s, a in rows
        ]

    def inventory(self, holder_id: str) -> list[str]:
        """What someone holds."""
        rows = self.conn.execute(
            "SELECT name FROM inventory WHERE holder_id = ? ORDER BY id", (holder_id,)
        )
        return [row[0] for row in rows]

    def last_seq(self, chat_id: str) -> int:
        """The seq of the chat's latest message."""
        row = self._one("SELECT seq FROM chat_seq WHERE chat_id = ?", chat_id)
        return int(row[0]) if row else 0

    def messages_after(self, chat_id: str, seq: int) -> list[dict[str, Any]] | None:
        """The chat's messages after ``seq``, or None when some are no longer kept."""
        last = self.last_seq(chat_id)
        if seq > last or seq < 0:
            return None
        if seq == last:
            return []
        first = self._one("SELECT min(seq) FROM outbox WHERE chat_id = ?", chat_id)[0]
        if first is None or first > seq + 1:
            return None
        rows = self.conn.execute(
            "SELECT payload FROM outbox WHERE chat_id = ? AND seq > ? ORDER BY seq",
            (chat_id, seq),
        )
        return [json.loads(row[0]) for row in rows]

    # --- rewind and rebuild ---

    def rewind_preview(self, chat_id: str, event_id: int) -> RewindPreview:
        """Count the chat's live events after ``event_id``, by kind."""
        self._check_rewind(chat_id, event_id)
        rows = self.conn.execute(
            "SELECT kind, count(*) FROM event_log WHERE chat_id = ? AND id > ? "
            "AND rewound_by IS NULL AND superseded_by IS NULL GROUP BY kind ORDER BY kind",
            (chat_id, event_id),
        )
        by_kind = {kind: count for kind, count in rows}
        return RewindPreview(sum(by_kind.values()), by_kind)

    def _check_rewind(self, chat_id: str, event_id: int) -> None:
        row = self._one("SELECT chat_id, rewound_by FROM event_log WHERE id = ?", event_id)
        if row is None or row[0] != chat_id:
            raise NotFound(f"event {event_id} is not an event of chat {chat_id}")
        if row[1] is not None:
            raise Invalid(f"event {event_id} was already rewound away")
        if self.open_beats(chat_id):
            raise Invalid("a beat of this chat is still streaming")

    def rewind(self, chat_id: str, event_id: int) -> int:
        """Snapshot, then hide the chat's events after ``event_id`` and re-project."""
        self._check_rewind(chat_id, event_id)
        self.snapshot(f"rewind-{chat_id}-{event_id}")
        with self.conn:
            self.conn.execute(
                "INSERT INTO event_log(at, chat_id, kind, payload) VALUES (?, ?, ?, ?)",
                (self.now(), chat_id, *dump_event(ev.ChatRewound(chat_id, event_id))),
            )
            rewind_id = self.conn.last_insert_rowid()
            self._mark_rewound(chat_id, event_id, rewind_id)
            self._reproject()
        return rewind_id

    def _mark_rewound(self, chat_id: str, event_id: int, rewind_id: int) -> None:
        self.conn.execute(
            "UPDATE event_log SET rewound_by = ? WHERE chat_id = ? AND id > ? AND id < ? "
            "AND rewound_by IS NULL",
            (rewind_id, chat_id, event_id, rewind_id),
        )

    def rebuild(self) -> None:
        """Recompute every projection (and the visibility marks) from the log alone."""
        with self.conn:
            self.conn.execute("UPDATE event_log SET rewound_by = NULL")
            rewinds = list(self.conn.execute(
                "SELECT id, payload FROM event_log WHERE kind = 'chat_rewound' ORDER BY id"
            ))
            for rewind_id, payload in rewinds:
                marker = load_event("chat_rewound", payload)
                assert isinstance(marker, ev.ChatRewound)
                self._mark_rewound(marker.chat_id, marker.to_event_id, rewind_id)
            self._reproject()

    def _reproject(self) -> None:
        for table in _schema.PROJECTION_TABLES:
            self.conn.execute(f"DELETE FROM {table}")
        self.conn.execute("UPDATE event_log SET superseded_by = NULL")
        seed_projections(self.conn)
        rows = self.conn.execute(
            "SELECT id, at, kind, payload FROM event_log WHERE rewound_by IS NULL ORDER BY id"
        )
        for event_id, at, kind, payload in list(rows):
            try:
                HANDLERS[kind](self.conn, event_id, at, load_event(kind, payload))
            except StoreError as exc:
                # Only possible if the log refers to something a rewind took away;
                # the event stays in the log, it just has nothing to project onto.
                log.warning("event %d (%s) not projected: %s", event_id, kind, exc)

    def snapshot(self, label: str) -> Path:
        """Copy the database into the snapshots folder (backup API); keep the newest N."""
        folder = self.data_dir / "snapshots"
        folder.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        target = folder / f"{stamp}-{label}.db"
        copy = apsw.Connection(str(target))
        try:
            with copy.backup("main", self.conn, "main") as backup:
                while not backup.done:
                    backup.step(-1)
        finally:
            copy.close()
        kept = sorted(folder.glob("*.db"))
        for old in kept[: max(0, len(kept) - self.keep_snapshots)]:
            old.unlink(missing_ok=True)
        return target

    def statistics(self) -> dict[str, Any]:
        """Events appended and beats recovered since opening, and the log's size."""
        return {
            "appended": self.appended,
            "recovered": self.recovered,
            "events": self.event_count(),
        }
