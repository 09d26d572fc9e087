"""The database schema and its forward migrations.

``PRAGMA user_version`` is the schema version. Each migration takes the
database from the version before it to its own; opening a database runs the
ones it lacks, in order, each in one transaction. A migration that adds or
changes a projection says so, and the store then rebuilds the projections
from the log, which is how a new table gets filled for the events before it.
"""

from __future__ import annotations

from typing import Any, Final

import apsw
from attrs import frozen

from ._errors import StoreError
from ._tx import transaction

LOG: Final = """
CREATE TABLE event_log (
    id INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    chat_id TEXT,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    superseded_by INTEGER,
    rewound_by INTEGER
);
CREATE INDEX event_log_chat ON event_log(chat_id, id);
CREATE INDEX event_log_kind ON event_log(kind);
CREATE TABLE outbox (
    chat_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    payload TEXT NOT NULL,
    PRIMARY KEY (chat_id, seq)
) WITHOUT ROWID;
CREATE TABLE chat_seq (chat_id TEXT PRIMARY KEY, seq INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE beat_checkpoints (
    beat_id INTEGER PRIMARY KEY,
    chat_id TEXT NOT NULL,
    text TEXT NOT NULL,
    at TEXT NOT NULL
);
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
"""

PROJECTIONS_V1: Final = """
CREATE TABLE entities (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    persona TEXT NOT NULL DEFAULT '',
    greeting TEXT NOT NULL DEFAULT '',
    deleted INTEGER NOT NULL DEFAULT 0,
    created_event INTEGER
);
CREATE TABLE chats (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    host_bot_id TEXT NOT NULL,
    guest_bot_id TEXT,
    location TEXT,
    created_at TEXT NOT NULL,
    created_event INTEGER NOT NULL
);
CREATE TABLE locations (name TEXT PRIMARY KEY, description TEXT NOT NULL DEFAULT '');
CREATE TABLE scenes (
    id INTEGER PRIMARY KEY,
    chat_id TEXT NOT NULL,
    location TEXT,
    opened_at TEXT NOT NULL,
    closed_at TEXT,
    close_reason TEXT
);
CREATE INDEX scenes_chat ON scenes(chat_id, id);
CREATE TABLE scene_summaries (
    scene_id INTEGER NOT NULL,
    bot_id TEXT NOT NULL,
    text TEXT NOT NULL,
    PRIMARY KEY (scene_id, bot_id)
);
CREATE TABLE edges (
    source_id TEXT NOT NULL,
    target_id TEXT NOT NULL,
    affinity INTEGER NOT NULL,
    trust INTEGER NOT NULL,
    summary TEXT NOT NULL DEFAULT '',
    facts TEXT NOT NULL DEFAULT '[]',
    last_at TEXT,
    last_chat_id TEXT,
    PRIMARY KEY (source_id, target_id)
);
CREATE TABLE memories (
    id INTEGER PRIMARY KEY,
    bot_id TEXT NOT NULL,
    chat_id TEXT NOT NULL,
    scene_id INTEGER,
    text TEXT NOT NULL,
    significance INTEGER NOT NULL DEFAULT 0,
    pinned INTEGER NOT NULL DEFAULT 0,
    pinned_by TEXT
);
CREATE INDEX memories_bot ON memories(bot_id, chat_id, id);
CREATE VIRTUAL TABLE memories_fts USING fts5(text);
CREATE TABLE world_events (
    id INTEGER PRIMARY KEY,
    chat_id TEXT NOT NULL,
    title TEXT NOT NULL,
    description TEXT NOT NULL,
    status TEXT NOT NULL,
    artifacts TEXT NOT NULL
);
CREATE INDEX world_events_chat ON world_events(chat_id, status);
CREATE TABLE timeline (
    event_id INTEGER PRIMARY KEY,
    chat_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    speaker_id TEXT NOT NULL,
    text TEXT NOT NULL,
    truncated INTEGER NOT NULL DEFAULT 0,
    interjection_of TEXT,
    user_turn_id INTEGER NOT NULL
);
CREATE INDEX timeline_chat ON timeline(chat_id, event_id);
CREATE TABLE open_beats (
    beat_id INTEGER PRIMARY KEY,
    chat_id TEXT NOT NULL,
    speaker_id TEXT NOT NULL,
    user_turn_id INTEGER NOT NULL,
    interjection_of TEXT
);
"""

PROJECTIONS_V2: Final = """
CREATE TABLE inventory (
    id INTEGER PRIMARY KEY,
    holder_id TEXT NOT NULL,
    name TEXT NOT NULL,
    chat_id TEXT NOT NULL,
    world_event_id INTEGER
);
CREATE INDEX inventory_holder ON inventory(holder_id);
CREATE INDEX memories_pins ON memories(bot_id, pinned, pinned_by);
"""

PROJECTIONS_V3: Final = """
DROP TABLE timeline;
CREATE TABLE timeline (
    chat_id TEXT NOT NULL,
    event_id INTEGER NOT NULL,
    kind TEXT NOT NULL,
    speaker_id TEXT NOT NULL,
    text TEXT NOT NULL,
    truncated INTEGER NOT NULL DEFAULT 0,
    interjection_of TEXT,
    user_turn_id INTEGER NOT NULL,
    PRIMARY KEY (chat_id, event_id)
) WITHOUT ROWID;
"""
"""The timeline clustered by chat: a chat's recent turns share a few pages, however
many other chats' turns were written in between (a rowid table scattered them)."""

PROJECTION_TABLES: Final = (
    "entities",
    "chats",
    "locations",
    "scenes",
    "scene_summaries",
    "edges",
    "memories",
    "memories_fts",
    "world_events",
    "timeline",
    "open_beats",
    "inventory",
    "chat_cast",
    "bot_cards",
    "lorebooks",
    "chat_lorebooks",
    "author_notes",
    "chat_people",
    "branches",
    "chat_branch",
    "chat_settings",
)
"""Tables derived from the log: ``rebuild()`` empties and refills them."""


@frozen
class Migration:
    """One step of the schema: its SQL, and whether the projections need a rebuild after it."""

    sql: str
    rebuild: bool


PROJECTIONS_V4: Final = """
ALTER TABLE memories ADD COLUMN source_event_id INTEGER;
CREATE INDEX memories_source ON memories(source_event_id);
"""
"""Memories know the beat they remember, so a regenerated beat's memories go with it."""

PROJECTIONS_V5: Final = """
CREATE TABLE chat_cast (
    chat_id TEXT NOT NULL,
    bot_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    present INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (chat_id, bot_id)
) WITHOUT ROWID;
ALTER TABLE timeline ADD COLUMN present TEXT;
"""
"""Casts and presence: every chat's bots in cast order and who is in the scene, and the
witnesses of each visible turn. A chat from before has the cast its host and guest make."""

PROJECTIONS_V6: Final = """
ALTER TABLE chat_cast ADD COLUMN muted INTEGER NOT NULL DEFAULT 0;
"""
"""Muting: a cast member who answers only when the person forces it (filled from the
log's ``mute_changed`` events, like every projection)."""
PROJECTIONS_V8: Final = """
CREATE TABLE bot_cards (
    bot_id TEXT PRIMARY KEY,
    spec TEXT NOT NULL,
    document TEXT NOT NULL,
    avatar TEXT
) WITHOUT ROWID;
CREATE TABLE lorebooks (
    lorebook_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    format TEXT NOT NULL,
    document TEXT NOT NULL,
    entries INTEGER NOT NULL
);
CREATE TABLE blobs (
    sha256 TEXT PRIMARY KEY,
    media_type TEXT NOT NULL,
    data BLOB NOT NULL
);
"""
"""Character cards and lorebooks brought from other front ends. ``bot_cards`` and
``lorebooks`` are projections of ``bot_card`` and ``lorebook_imported`` events; ``blobs``
(avatar images, by sha256) is not: it is written with the event that names it and never
emptied by a rebuild, since the log holds only the image's hash."""

PROJECTIONS_V9: Final = """
CREATE TABLE chat_lorebooks (
    chat_id TEXT NOT NULL,
    lorebook_id TEXT NOT NULL,
    attached_event INTEGER NOT NULL,
    PRIMARY KEY (chat_id, lorebook_id)
) WITHOUT ROWID;
CREATE TABLE author_notes (
    chat_id TEXT PRIMARY KEY,
    text TEXT NOT NULL,
    depth INTEGER NOT NULL
) WITHOUT ROWID;
"""
"""The lorebooks attached to each chat, and each chat's author's note (rebuilt like every
projection, though no older log has their events)."""
PROJECTIONS_V7: Final = """
CREATE TABLE chat_people (
    chat_id TEXT NOT NULL,
    person_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    PRIMARY KEY (chat_id, person_id)
) WITHOUT ROWID;
CREATE TABLE turn_queue (
    id INTEGER PRIMARY KEY,
    chat_id TEXT NOT NULL,
    person_id TEXT NOT NULL,
    prose TEXT NOT NULL,
    reply_as TEXT,
    at TEXT NOT NULL
);
CREATE INDEX turn_queue_chat ON turn_queue(chat_id, id);
"""
"""Several people at one table: the personas of each chat (who sat down or spoke there,
projected), and the turns waiting behind the one in flight. The queue is not a
projection: a queued turn is not part of the story until it runs (its ``user_turn``
is appended then), yet it is kept on disk so that a crash loses none."""
PROJECTIONS_V10: Final = """
DROP TABLE edges;
CREATE TABLE edges (
    chat_id TEXT NOT NULL,
    source_id TEXT NOT NULL,
    target_id TEXT NOT NULL,
    affinity INTEGER NOT NULL,
    trust INTEGER NOT NULL,
    summary TEXT NOT NULL DEFAULT '',
    facts TEXT NOT NULL DEFAULT '[]',
    last_at TEXT,
    last_chat_id TEXT,
    PRIMARY KEY (chat_id, source_id, target_id)
) WITHOUT ROWID;
DROP INDEX memories_bot;
DROP INDEX memories_pins;
CREATE INDEX memories_bot ON memories(chat_id, bot_id, id);
CREATE INDEX memories_pins ON memories(chat_id, bot_id, pinned, pinned_by);
"""
"""A chat is its own story: relationship edges (and the knowledge facts on them) are
kept per chat, as memories already were, and both are looked up by chat first. An edge
update of an older log that names no chat lands under the chat id ``''``, which no chat
reads."""

PROJECTIONS_V11: Final = """
ALTER TABLE event_log ADD COLUMN branch_id INTEGER;
CREATE INDEX event_log_branch ON event_log(chat_id, branch_id, id);
CREATE TABLE branches (
    chat_id TEXT NOT NULL,
    branch_id INTEGER NOT NULL,
    parent_id INTEGER,
    fork_event_id INTEGER,
    PRIMARY KEY (chat_id, branch_id)
) WITHOUT ROWID;
CREATE TABLE chat_branch (chat_id TEXT PRIMARY KEY, current INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE branch_views (
    chat_id TEXT NOT NULL,
    branch_id INTEGER NOT NULL,
    tip_event_id INTEGER NOT NULL,
    rows TEXT NOT NULL,
    PRIMARY KEY (chat_id, branch_id)
) WITHOUT ROWID;
"""
"""Branches: every event of a chat belongs to the branch that was current when it was
written (``event_log.branch_id``, filled in for older logs by the rebuild), each branch
starts after a fork point of its parent, and each chat has a current branch. A rewind
of before is a fork too, so its tail becomes a branch that can be returned to."""

PROJECTIONS_V12: Final = """
CREATE TABLE chat_settings (
    chat_id TEXT PRIMARY KEY,
    temperature REAL,
    top_p REAL,
    min_p REAL,
    repeat_penalty REAL,
    max_tokens INTEGER
) WITHOUT ROWID;
"""
"""Each chat's sampler settings (``chat_settings_updated``); a chat without a row, or a
null column, samples at the backend's defaults. Rebuilt after it like every projection
table, so a database is always what its log says."""

COMMANDS_V13: Final = """
CREATE TABLE commands (
    chat_id TEXT NOT NULL,
    command_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    first_event_id INTEGER NOT NULL,
    answer TEXT,
    PRIMARY KEY (chat_id, command_id)
) WITHOUT ROWID;
"""
"""The commands that carried a ``command_id`` and wrote: one row each, inserted with the
command's first event, answered once the answer is known (see ``store._commands``). Not a
projection: no rebuild or rewind touches it."""

MIGRATIONS: Final = (
    Migration(LOG + PROJECTIONS_V1, rebuild=False),
    Migration(PROJECTIONS_V2, rebuild=True),
    Migration(PROJECTIONS_V3, rebuild=True),
    Migration(PROJECTIONS_V4, rebuild=True),
    Migration(PROJECTIONS_V5, rebuild=True),
    Migration(PROJECTIONS_V6, rebuild=True),
    Migration(PROJECTIONS_V7, rebuild=True),
    Migration(PROJECTIONS_V8, rebuild=True),
    Migration(PROJECTIONS_V9, rebuild=True),
    Migration(PROJECTIONS_V10, rebuild=True),
    Migration(PROJECTIONS_V11, rebuild=True),
    Migration(PROJECTIONS_V12, rebuild=True),
    Migration(COMMANDS_V13, rebuild=False),
)
"""Migration N (1-based) takes the schema from version N-1 to N."""

LATEST: Final = len(MIGRATIONS)


def version(conn: apsw.Connection) -> int:
    """The schema version of an open database."""
    value: Any = conn.execute("PRAGMA user_version").fetchall()[0][0]
    return int(value)


def migrate(conn: apsw.Connection, target: int = LATEST) -> bool:
    """Run the migrations the database lacks, up to ``target``.

    Returns whether one of them asks for the projections to be rebuilt. A
    fresh database needs no rebuild: its log is empty.
    """
    current = version(conn)
    if current > LATEST:
        raise StoreError(
            f"the database has schema version {current}, newer than this troupe knows "
            f"({LATEST}); open it with a newer troupe"
        )
    rebuild = False
    for number in range(current + 1, target + 1):
        step = MIGRATIONS[number - 1]
        with transaction(conn):
            conn.execute(step.sql)
            conn.execute(f"PRAGMA user_version = {number}")
        rebuild = rebuild or (step.rebuild and current > 0)
    return rebuild
