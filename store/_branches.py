"""Branches: a chat's log as a tree, and the projections of one chat rebuilt alone.

Every event of a chat is written on the chat's current branch
(``event_log.branch_id``). A branch other than the chat's root starts after a
fork point (``fork_event_id``) of its parent: its **path** is its own events,
then its parent's up to the fork point, then the grandparent's up to the
parent's fork point, and so on. The projections of a chat show exactly the
events on the path of its current branch.

Forking (a rewind, a regenerated beat, an edited turn) and switching change
the path, and :func:`reproject_chat` then rebuilds that one chat's tables from
its own events, read through the ``(chat_id, branch_id, id)`` index: its cost
follows the chat's length, never the log's, and no other chat's rows are
touched. The structural events (``chat_created``, ``chat_rewound``,
``branch_forked``, ``branch_switched``) build the tree and are applied whatever
the path.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any, Final

from protocol import BranchInfo, load_event
from protocol import events as ev

from ._conn import Connection
from ._errors import StoreError
from ._project import HANDLERS, _recast, current_branch

log = logging.getLogger("troupe.store")

STRUCTURAL: Final = ("chat_created", "chat_rewound", "branch_forked", "branch_switched")
"""Event kinds that shape a chat's tree; the others are the story on a branch."""

FORKS: Final = ("chat_rewound", "branch_forked")

REPLAY_SLICE: Final = 1000
"""Events read from the log at a time while re-projecting."""

Path = tuple[tuple[int, int | None], ...]
"""``(branch_id, last event id on it or None for all)``, from the branch to the root."""

_CHAT_TABLES: Final = (
    "timeline",
    "open_beats",
    "edges",
    "world_events",
    "inventory",
    "chat_cast",
    "chat_lorebooks",
    "author_notes",
    "chat_people",
    "chat_settings",
    "chats",
)


def branch_path(conn: Connection, chat_id: str, branch_id: int | None = None) -> Path:
    """The path of a branch of the chat (its current one by default)."""
    branch = current_branch(conn, chat_id) if branch_id is None else branch_id
    tree = {
        int(b): (p, f)
        for b, p, f in conn.execute(
            "SELECT branch_id, parent_id, fork_event_id FROM branches WHERE chat_id = ?",
            (chat_id,),
        )
    }
    return path_in(tree, branch)


def path_in(tree: dict[int, tuple[int | None, int | None]], branch: int) -> Path:
    """A branch's path in a tree of ``branch -> (parent, fork point)``."""
    path: list[tuple[int, int | None]] = []
    cap: int | None = None
    seen: set[int] = set()
    at: int | None = branch
    while at is not None and at not in seen:
        seen.add(at)
        path.append((at, cap))
        parent, fork = tree.get(at, (None, None))
        if fork is not None:
            cap = fork if cap is None else min(cap, fork)
        at = parent
    return tuple(path)


def on_path(path: Path, branch_id: int | None, event_id: int) -> bool:
    """Whether an event written on ``branch_id`` is on the path."""
    branch = branch_id or 0
    return any(b == branch and (cap is None or event_id <= cap) for b, cap in path)


def path_sql(path: Path) -> tuple[str, tuple[object, ...]]:
    """A WHERE clause (and its arguments) keeping a chat's events on the path."""
    terms: list[str] = []
    args: list[object] = []
    for branch, cap in path:
        if cap is None:
            terms.append("coalesce(branch_id, 0) = ?")
            args.append(branch)
        else:
            terms.append("(coalesce(branch_id, 0) = ? AND id <= ?)")
            args.extend((branch, cap))
    return "(" + " OR ".join(terms or ["1 = 0"]) + ")", tuple(args)


def stamp_older_events(conn: Connection) -> None:
    """Give every chat event of an older log its branch, replaying the forks in order.

    Before branches, a rewind applied at once: what a chat wrote after it was
    written on the branch it started. Only events without a branch are touched.
    """
    current: dict[str, int] = {}
    last: dict[str, int] = {}
    tree: dict[str, dict[int, int]] = {}
    rows: list[Any] = conn.execute(
        "SELECT id, chat_id, kind, payload FROM event_log WHERE kind IN (?, ?, ?, ?) ORDER BY id",
        STRUCTURAL,
    ).fetchall()
    for event_id, chat_id, kind, payload in rows:
        if chat_id in current:
            _stamp(conn, chat_id, current[chat_id], last[chat_id], event_id)
        event = load_event(kind, payload)
        if kind == "chat_created":
            current[chat_id] = event_id
            tree[chat_id] = {event_id: 0}
        elif kind in FORKS and chat_id in current:
            current[chat_id] = event_id
        elif kind == "branch_switched" and chat_id in current:
            current[chat_id] = int(getattr(event, "branch_id", current[chat_id]))
        if chat_id in current:
            conn.execute(
                "UPDATE event_log SET branch_id = ? WHERE id = ? AND branch_id IS NULL",
                (current[chat_id], event_id),
            )
        last[chat_id] = event_id
    for chat_id, branch in current.items():
        _stamp(conn, chat_id, branch, last[chat_id], None)


def _stamp(conn: Connection, chat_id: str, branch: int, after: int, before: int | None) -> None:
    conn.execute(
        "UPDATE event_log SET branch_id = ? WHERE chat_id = ? AND id > ? AND id < ? "
        "AND branch_id IS NULL",
        (branch, chat_id, after, before if before is not None else 1 << 62),
    )


def final_paths(conn: Connection) -> dict[str, Path]:
    """Every chat's current path as its structural events leave it (for a whole rebuild)."""
    trees: dict[str, dict[int, tuple[int | None, int | None]]] = {}
    current: dict[str, int] = {}
    rows: list[Any] = conn.execute(
        "SELECT id, chat_id, kind, payload FROM event_log WHERE kind IN (?, ?, ?, ?) "
        "AND rewound_by IS NULL ORDER BY id",
        STRUCTURAL,
    ).fetchall()
    for event_id, chat_id, kind, payload in rows:
        event: Any = load_event(kind, payload)
        if kind == "chat_created":
            if chat_id in trees:
                continue  # a refused duplicate: the first one made the chat
            trees[chat_id] = {event_id: (None, None)}
            current[chat_id] = event_id
        elif chat_id not in trees:
            continue
        elif kind in FORKS:
            point = event.to_event_id if kind == "chat_rewound" else event.at_event_id
            trees[chat_id][event_id] = (current[chat_id], point)
            current[chat_id] = event_id
        elif event.branch_id in trees[chat_id]:
            current[chat_id] = event.branch_id
    return {chat_id: path_in(trees[chat_id], current[chat_id]) for chat_id in trees}


def _tip(conn: Connection, chat_id: str, path: Path) -> int:
    """The newest story event on a path (each branch's run read through the branch index)."""
    tip = 0
    for branch, cap in path:
        # The story's newest event: a fork or switch lands on a branch without changing it.
        row: list[Any] = conn.execute(
            "SELECT id FROM event_log WHERE chat_id = ? AND branch_id = ? AND id <= ? "
            "AND kind NOT IN (?, ?, ?, ?) ORDER BY id DESC LIMIT 1",
            (chat_id, branch, cap if cap is not None else 1 << 62, *STRUCTURAL),
        ).fetchall()
        tip = max(tip, int(row[0][0]) if row else 0)
    return tip


def _view_tables(chat_id: str) -> list[tuple[str, str, tuple[object, ...]]]:
    """Each chat-scoped projection: its name, the rows of the chat, and their arguments."""
    scenes = "SELECT id FROM scenes WHERE chat_id = ?"
    memories = "SELECT id FROM memories WHERE chat_id = ?"
    return [
        *((t, f"SELECT * FROM {t} WHERE chat_id = ?", (chat_id,)) for t in _CHAT_TABLES[:-1]),
        ("chats", "SELECT * FROM chats WHERE id = ?", (chat_id,)),
        ("scenes", "SELECT * FROM scenes WHERE chat_id = ?", (chat_id,)),
        (
            "scene_summaries",
            f"SELECT * FROM scene_summaries WHERE scene_id IN ({scenes})",
            (chat_id,),
        ),
        ("memories", "SELECT * FROM memories WHERE chat_id = ?", (chat_id,)),
        (
            "memories_fts",
            f"SELECT rowid, text FROM memories_fts WHERE rowid IN ({memories})",
            (chat_id,),
        ),
        (
            "superseded",
            "SELECT id, superseded_by FROM event_log WHERE chat_id = ? "
            "AND superseded_by IS NOT NULL",
            (chat_id,),
        ),
    ]


def keep_view(conn: Connection, chat_id: str) -> None:
    """Keep the chat's projected rows for its current branch, before it changes branch.

    A cache: coming back to the branch with nothing written on it since
    restores them instead of replaying the chat (see :func:`reproject_chat`).
    """
    branch = current_branch(conn, chat_id)
    tip = _tip(conn, chat_id, branch_path(conn, chat_id, branch))
    rows = {name: conn.execute(sql, args).fetchall() for name, sql, args in _view_tables(chat_id)}
    conn.execute(
        "INSERT INTO branch_views(chat_id, branch_id, tip_event_id, rows) VALUES (?, ?, ?, ?) "
        "ON CONFLICT(chat_id, branch_id) DO UPDATE SET tip_event_id = excluded.tip_event_id, "
        "rows = excluded.rows",
        (chat_id, branch, tip, json.dumps(rows, ensure_ascii=False)),
    )


def _restore_view(conn: Connection, chat_id: str, path: Path) -> bool:
    """Put back the rows kept for the current branch, if nothing was written on it since."""
    branch = path[0][0]
    row: list[Any] = conn.execute(
        "SELECT tip_event_id, rows FROM branch_views WHERE chat_id = ? AND branch_id = ?",
        (chat_id, branch),
    ).fetchall()
    if not row or int(row[0][0]) != _tip(conn, chat_id, path):
        return False
    kept: dict[str, list[list[Any]]] = json.loads(row[0][1])
    for table, rows in kept.items():
        if not rows:
            continue
        if table == "superseded":
            conn.executemany(
                "UPDATE event_log SET superseded_by = ? WHERE id = ?", [(b, a) for a, b in rows]
            )
        elif table == "memories_fts":
            conn.executemany("INSERT INTO memories_fts(rowid, text) VALUES (?, ?)", rows)
        else:
            marks = ", ".join("?" for _ in rows[0])
            conn.executemany(f"INSERT INTO {table} VALUES ({marks})", rows)
    return True


class DecodedEvents:
    """Events of the log as decoded, by id, the newest kept: a replay decodes each once.

    Decoding a payload (JSON, then every field checked) is most of what
    replaying a chat costs; the events a process appended or replayed are kept
    here (at most ``size``, the oldest dropped first). An entry counts only for
    the same kind and payload: an id reused after a refused append is decoded
    anew.
    """

    def __init__(self, size: int = 50_000) -> None:
        self.size = size
        self._events: dict[int, tuple[str, str, ev.Event]] = {}

    def keep(self, event_id: int, kind: str, payload: str, event: ev.Event) -> None:
        """Remember how ``event_id`` decodes."""
        self._events.pop(event_id, None)
        self._events[event_id] = (kind, payload, event)
        while len(self._events) > self.size:
            del self._events[next(iter(self._events))]

    def forget(self, chat_id: str | None = None) -> None:
        """Drop the events of one chat (of every chat, and world-wide ones, when None)."""
        if chat_id is None:
            self._events.clear()
            return
        for event_id in [i for i, (_, _, e) in self._events.items() if ev.chat_of(e) == chat_id]:
            del self._events[event_id]

    def load(self, event_id: int, kind: str, payload: str) -> ev.Event:
        """The event ``event_id`` is, decoded once."""
        hit = self._events.get(event_id)
        if hit is not None and hit[0] == kind and hit[1] == payload:
            return hit[2]
        event = load_event(kind, payload)
        self.keep(event_id, kind, payload, event)
        return event


def reproject_chat(conn: Connection, chat_id: str, decoded: DecodedEvents | None = None) -> int:
    """Rebuild one chat's projections from its events on its current path; returns how many.

    The caller holds the transaction. Only the chat's own rows change; the
    tree (``branches``, ``chat_branch``) is kept as it is. When the rows of
    the branch were kept on leaving it and nothing was written on it since,
    they are put back instead of replayed (0 events replayed).
    """
    path = branch_path(conn, chat_id)
    current = current_branch(conn, chat_id)
    _clear_chat(conn, chat_id)
    if _restore_view(conn, chat_id, path):
        _drop_deleted_bots(conn, chat_id)
        return 0
    where, args = path_sql(path)
    # The chat's events were checked against the bots as they were then: a bot
    # deleted since was alive for them. Its deletion is applied again after.
    deleted = [r[0] for r in conn.execute("SELECT id FROM entities WHERE deleted = 1")]
    conn.execute("UPDATE entities SET deleted = 0 WHERE deleted = 1")
    deletions: list[Any] = conn.execute(
        "SELECT id, payload FROM event_log WHERE kind = 'bot_deleted' AND rewound_by IS NULL "
        "ORDER BY id"
    ).fetchall()
    replayed = 0
    for event_id, at, kind, payload in _slices(conn, chat_id, where, args):
        while deletions and deletions[0][0] < event_id:
            _delete_bot(conn, chat_id, deletions.pop(0)[1])
        if kind != "chat_created" and kind in STRUCTURAL:
            continue  # the tree is already built
        try:
            event = (decoded or _ONCE).load(event_id, kind, payload)
            HANDLERS[kind](conn, event_id, at, event)
        except StoreError as exc:
            log.warning("event %d (%s) not projected: %s", event_id, kind, exc)
        replayed += 1
    conn.execute("UPDATE chat_branch SET current = ? WHERE chat_id = ?", (current, chat_id))
    conn.executemany("UPDATE entities SET deleted = 1 WHERE id = ?", [(d,) for d in deleted])
    _drop_deleted_bots(conn, chat_id)
    conn.execute(
        "DELETE FROM beat_checkpoints WHERE chat_id = ? AND beat_id NOT IN "
        "(SELECT beat_id FROM open_beats)",
        (chat_id,),
    )
    return replayed


class _Once(DecodedEvents):
    """Decodes every time: for a replay given no cache."""

    def load(self, event_id: int, kind: str, payload: str) -> ev.Event:
        return load_event(kind, payload)


_ONCE = _Once(0)


def _slices(
    conn: Connection, chat_id: str, where: str, args: tuple[object, ...]
) -> Iterator[tuple[int, str, str, str]]:
    last = 0
    while True:
        # In slices, as a whole rebuild does: the trio loop waiting on the store's
        # thread gets the GIL between them.
        rows: list[Any] = conn.execute(
            # Through the chat's own index: a rowid scan would walk every chat's events.
            "SELECT id, at, kind, payload FROM event_log INDEXED BY event_log_chat "
            "WHERE chat_id = ? AND id > ? "
            f"AND rewound_by IS NULL AND {where} ORDER BY id LIMIT ?",
            (chat_id, last, *args, REPLAY_SLICE),
        ).fetchall()
        if not rows:
            return
        yield from rows
        last = rows[-1][0]


def _clear_chat(conn: Connection, chat_id: str) -> None:
    conn.execute(
        "DELETE FROM scene_summaries WHERE scene_id IN (SELECT id FROM scenes WHERE chat_id = ?)",
        (chat_id,),
    )
    conn.execute("DELETE FROM scenes WHERE chat_id = ?", (chat_id,))
    conn.execute(
        "DELETE FROM memories_fts WHERE rowid IN (SELECT id FROM memories WHERE chat_id = ?)",
        (chat_id,),
    )
    conn.execute("DELETE FROM memories WHERE chat_id = ?", (chat_id,))
    for table in _CHAT_TABLES:
        column = "id" if table == "chats" else "chat_id"
        conn.execute(f"DELETE FROM {table} WHERE {column} = ?", (chat_id,))
    conn.execute(
        "UPDATE event_log SET superseded_by = NULL "
        "WHERE chat_id = ? AND superseded_by IS NOT NULL",
        (chat_id,),
    )


def _delete_bot(conn: Connection, chat_id: str, payload: str) -> None:
    """A ``bot_deleted`` as it touched this chat: the bot leaves its cast (never the host)."""
    event: Any = load_event("bot_deleted", payload)
    bot_id = event.bot_id
    conn.execute("UPDATE entities SET deleted = 1 WHERE id = ?", (bot_id,))
    conn.execute(
        "DELETE FROM chat_cast WHERE chat_id = ? AND bot_id = ? AND position > 0",
        (chat_id, bot_id),
    )
    _recast(conn, chat_id)


def _drop_deleted_bots(conn: Connection, chat_id: str) -> None:
    """A bot deleted since leaves the cast again, as its ``bot_deleted`` did (not the host)."""
    gone = conn.execute(
        "SELECT c.bot_id FROM chat_cast c JOIN entities e ON e.id = c.bot_id "
        "WHERE c.chat_id = ? AND c.position > 0 AND e.deleted = 1",
        (chat_id,),
    ).fetchall()
    for (bot_id,) in gone:
        conn.execute("DELETE FROM chat_cast WHERE chat_id = ? AND bot_id = ?", (chat_id, bot_id))
    if gone:
        _recast(conn, chat_id)


_TURN_KINDS: Final = ("user_turn", "user_turn_edit", "assistant_turn")


def list_branches(conn: Connection, chat_id: str) -> list[BranchInfo]:
    """Every branch of the chat, the root first, then by when each was made."""
    tree = {
        int(b): (p, f)
        for b, p, f in conn.execute(
            "SELECT branch_id, parent_id, fork_event_id FROM branches WHERE chat_id = ? "
            "ORDER BY branch_id",
            (chat_id,),
        )
    }
    current = current_branch(conn, chat_id)
    out: list[BranchInfo] = []
    for branch, (parent, fork) in tree.items():
        where, args = path_sql(path_in(tree, branch))
        scope = f"chat_id = ? AND {where} AND kind NOT IN (?, ?, ?, ?)"
        length, tip = conn.execute(
            f"SELECT count(*) FILTER (WHERE kind IN (?, ?, ?)), max(id) FROM event_log "
            f"WHERE {scope}",
            (*_TURN_KINDS, chat_id, *args, *STRUCTURAL),
        ).fetchall()[0]
        last = conn.execute(
            "SELECT coalesce(json_extract(payload, '$.prose'), json_extract(payload, '$.text')) "
            f"FROM event_log WHERE {scope} AND kind IN (?, ?, ?) ORDER BY id DESC LIMIT 1",
            (chat_id, *args, *STRUCTURAL, *_TURN_KINDS),
        ).fetchall()
        out.append(
            BranchInfo(
                branch,
                parent,
                fork,
                int(length or 0),
                int(tip or fork or branch),
                str(last[0][0] or "") if last else "",
                branch == current,
            )
        )
    return out


def beat_alternatives(
    conn: Connection, chat_id: str, since: int = 0
) -> dict[int, tuple[int, ...]]:
    """For each beat of the chat, every beat answering the same line as the same speaker.

    Beats answer the same line as the same speaker when they share the user
    turn, the speaker and what they interject: the beat regenerated and the
    beats that replaced it, on whatever branch they are. Oldest first.
    ``since`` (a user turn id) reads only the beats from there on, through
    the chat's index: a beat comes after the line it answers.
    """
    groups: dict[tuple[Any, ...], list[int]] = {}
    for event_id, user_turn, speaker, interjection in conn.execute(
        "SELECT id, json_extract(payload, '$.user_turn_id'), "
        "json_extract(payload, '$.speaker_id'), "
        "json_extract(payload, '$.interjection_of') FROM event_log "
        "WHERE chat_id = ? AND id >= ? AND kind = 'assistant_turn' ORDER BY id",
        (chat_id, since),
    ):
        groups.setdefault((user_turn, speaker, interjection), []).append(int(event_id))
    return {beat: tuple(group) for group in groups.values() for beat in group}
