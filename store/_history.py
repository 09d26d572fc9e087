"""Rebuild and snapshots: the projections recomputed from the log alone.

Nothing is ever deleted from the log. A rewind forks a branch (see
``_branches``): what it took away stays on the branch that was current. What
an older regenerate or edit replaced is marked ``superseded_by`` by the
projection handler of the replacing event, which a replay sets again. The
``rewound_by`` marks of older releases are no longer used: a rebuild clears
them, and the branches say what each chat shows.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import apsw

from protocol import load_event

from . import _schema
from ._branches import STRUCTURAL, final_paths, on_path, stamp_older_events
from ._conn import Connection
from ._errors import StoreError
from ._project import HANDLERS, remember_place, seed_projections
from ._tx import space_errors

log = logging.getLogger("troupe.store")

REPLAY_SLICE = 1000
"""Events read from the log at a time while re-projecting."""


def recompute_rewinds(conn: Connection) -> None:
    """Clear the ``rewound_by`` marks of older releases and give older events their branch.

    A rewind of before is a fork like any: its tail is the branch that was
    current, so the same events stay out of view, and can now be returned to.
    """
    conn.execute("UPDATE event_log SET rewound_by = NULL WHERE rewound_by IS NOT NULL")
    stamp_older_events(conn)


def reproject(conn: Connection) -> int:
    """Empty the projection tables and replay every event not rewound; returns how many.

    The caller holds the transaction. Supersede marks are cleared first and
    set again by the replacing events' handlers, so a replacement that was
    rewound makes the turn it replaced visible again.
    """
    for table in _schema.PROJECTION_TABLES:
        conn.execute(f"DELETE FROM {table}")
    conn.execute("DELETE FROM branch_views")  # a cache of projections: rebuilt on demand
    conn.execute("UPDATE event_log SET superseded_by = NULL WHERE superseded_by IS NOT NULL")
    seed_projections(conn)
    paths = final_paths(conn)
    replayed, last = 0, 0
    while True:
        # In slices: freeing 100k rows at once holds the GIL long enough to
        # stall the trio loop that is waiting on the store's thread.
        rows: list[Any] = conn.execute(
            "SELECT id, at, chat_id, branch_id, kind, payload FROM event_log "
            "WHERE rewound_by IS NULL AND id > ? ORDER BY id LIMIT ?",
            (last, REPLAY_SLICE),
        ).fetchall()
        if not rows:
            break
        for event_id, at, chat_id, branch_id, kind, payload in rows:
            path = paths.get(chat_id) if chat_id is not None else None
            if (
                path is not None
                and kind not in STRUCTURAL
                and not on_path(path, branch_id, event_id)
            ):
                # On another branch of its chat; a place it named stays known.
                if kind == "scene_opened":
                    remember_place(conn, load_event(kind, payload))
                continue
            try:
                HANDLERS[kind](conn, event_id, at, load_event(kind, payload))
            except StoreError as exc:
                # Every event passed these checks when it was appended, and a rewind
                # only removes a chat's own later events, which nothing earlier or
                # elsewhere refers to. Should a log still disagree (edited by hand),
                # the event stays in the log and is simply not projected.
                log.warning("event %d (%s) not projected: %s", event_id, kind, exc)
        replayed += len(rows)
        last = rows[-1][0]
    conn.execute(
        "DELETE FROM beat_checkpoints WHERE beat_id NOT IN (SELECT beat_id FROM open_beats)"
    )
    return replayed


def snapshot(conn: apsw.Connection, folder: Path, label: str, keep: int) -> Path:
    """Copy the whole database into ``folder`` with the backup API; keep the newest ``keep``.

    The backup reads one consistent state of the database even while the WAL
    holds commits not yet checkpointed, which a file copy would not.
    """
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", label)[:80]
    target = folder / f"{stamp}-{safe}.db"
    with space_errors():
        folder.mkdir(parents=True, exist_ok=True)
        copy = apsw.Connection(str(target))
        try:
            with space_errors(copy), copy.backup("main", conn, "main") as backup:
                backup.step(-1)
        except BaseException:
            copy.close()
            target.unlink(missing_ok=True)  # half a snapshot is no snapshot
            raise
        copy.close()
    for old in snapshots(folder)[: max(0, len(snapshots(folder)) - keep)]:
        old.unlink(missing_ok=True)
        for extra in ("-wal", "-shm"):
            old.with_name(old.name + extra).unlink(missing_ok=True)
    return target


def snapshots(folder: Path) -> list[Path]:
    """The snapshot files in ``folder``, oldest first (their names start with the time)."""
    return sorted(folder.glob("*.db")) if folder.is_dir() else []
