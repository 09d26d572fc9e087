"""Projections: one handler per event kind, checking then applying it in SQL.

Each handler first checks that the event makes sense against the current
state (raising :class:`NotFound` or :class:`Invalid`), then applies it. The
caller runs both inside the transaction that appends the event, so a refused
event leaves neither a log row nor a projection change.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from protocol import (
    EDGE_DEFAULT,
    MAX_CAST,
    MAX_FACTS,
    MOVE_EVENTS,
    YOU_ID,
    ChatSettings,
    author_note_problem,
    clamp_edge,
    converter,
    moved_from,
    sampler_problem,
)
from protocol import events as ev

from ._conn import Connection
from ._errors import Invalid, NotFound

MAX_KNOWN_FACTS = MAX_FACTS
"""Knowledge facts kept per edge; the oldest go first."""

DEFAULT_EDGE = (EDGE_DEFAULT, EDGE_DEFAULT)

Handler = Callable[[Connection, int, str, Any], None]


clamp = clamp_edge
"""Affinity and trust live in 0..100 (the protocol's bounds)."""


def _one(conn: Connection, sql: str, *args: object) -> Any:
    for row in conn.execute(sql, args):
        return row
    return None


def _chat(conn: Connection, chat_id: str) -> Any:
    row = _one(conn, "SELECT host_bot_id, guest_bot_id FROM chats WHERE id = ?", chat_id)
    if row is None:
        raise NotFound(f"there is no chat {chat_id!r}")
    return row


def _bot(conn: Connection, bot_id: str, *, live: bool = True) -> None:
    row = _one(conn, "SELECT deleted FROM entities WHERE id = ? AND kind = 'bot'", bot_id)
    if row is None or (live and row[0]):
        raise NotFound(f"there is no bot {bot_id!r}")


def _member(conn: Connection, chat_id: str, bot_id: str) -> tuple[int, bool]:
    """A cast member's position and presence; not one is the event's mistake."""
    _chat(conn, chat_id)
    row = _one(
        conn,
        "SELECT position, present FROM chat_cast WHERE chat_id = ? AND bot_id = ?",
        chat_id,
        bot_id,
    )
    if row is None:
        raise Invalid(f"{bot_id!r} is not in the cast of chat {chat_id}")
    return int(row[0]), bool(row[1])


def _recast(conn: Connection, chat_id: str) -> None:
    """Keep the chat's guest column the cast's second bot, for those who read host and guest."""
    conn.execute(
        "UPDATE chats SET guest_bot_id = (SELECT bot_id FROM chat_cast WHERE chat_id = ?1 "
        "AND position > 0 ORDER BY position LIMIT 1) WHERE id = ?1",
        (chat_id,),
    )
    if _one(conn, "SELECT 1 FROM chat_cast WHERE chat_id = ? AND present = 1", chat_id) is None:
        # Someone is always in the scene: the host, when everyone else has gone.
        conn.execute(
            "UPDATE chat_cast SET present = 1 WHERE chat_id = ? AND position = 0", (chat_id,)
        )


def present_bots(conn: Connection, chat_id: str) -> tuple[str, ...]:
    """The chat's cast members in its scene now, in cast order."""
    rows = conn.execute(
        "SELECT bot_id FROM chat_cast WHERE chat_id = ? AND present = 1 ORDER BY position",
        (chat_id,),
    )
    return tuple(r[0] for r in rows)


def people_of(conn: Connection, chat_id: str) -> tuple[str, ...]:
    """The personas at the chat's table in the order they came; ``you`` alone when nobody yet."""
    rows = conn.execute(
        "SELECT person_id FROM chat_people WHERE chat_id = ? ORDER BY position", (chat_id,)
    )
    return tuple(r[0] for r in rows) or (YOU_ID,)


def present_now(conn: Connection, chat_id: str) -> tuple[str, ...]:
    """Who is in the chat's scene now: its present cast members in cast order, then its people."""
    # One statement: a replay asks this for nearly every turn.
    rows = conn.execute(
        "SELECT 0, position, bot_id FROM chat_cast WHERE chat_id = ?1 AND present = 1 "
        "UNION ALL SELECT 1, position, person_id FROM chat_people WHERE chat_id = ?1 "
        "ORDER BY 1, 2",
        (chat_id,),
    ).fetchall()
    bots = tuple(str(r[2]) for r in rows if r[0] == 0)
    people = tuple(str(r[2]) for r in rows if r[0] == 1)
    return (*bots, *(people or (YOU_ID,)))


def present_json(present: tuple[str, ...]) -> str:
    """Who was present, as a timeline row keeps it."""
    return json.dumps(list(present))


def _present_json(conn: Connection, chat_id: str, present: ev.Present) -> str:
    return present_json(present if present is not None else present_now(conn, chat_id))


def _entity(conn: Connection, entity_id: str) -> None:
    if _one(conn, "SELECT 1 FROM entities WHERE id = ?", entity_id) is None:
        raise NotFound(f"there is no one called {entity_id!r}")


def _visible_turn(conn: Connection, event_id: int, chat_id: str, kind: str) -> None:
    row = _one(
        conn, "SELECT kind FROM timeline WHERE chat_id = ? AND event_id = ?", chat_id, event_id
    )
    if row is None or row[0] != kind:
        raise NotFound(f"event {event_id} is not a visible {kind} turn of chat {chat_id}")


def _memory(conn: Connection, memory_id: int, chat_id: str) -> None:
    row = _one(conn, "SELECT chat_id FROM memories WHERE id = ?", memory_id)
    if row is None:
        raise NotFound(f"there is no memory {memory_id}")
    if row[0] != chat_id:
        # A memory's events stay in its own chat, so rewinding another chat
        # can never take away something they refer to.
        raise Invalid(f"memory {memory_id} belongs to chat {row[0]}, not {chat_id}")


def _user_turn_of(conn: Connection, event_id: int, chat_id: str) -> None:
    row = _one(conn, "SELECT chat_id, kind FROM event_log WHERE id = ?", event_id)
    # A greeting answers the chat_created event itself.
    if row is None or row[0] != chat_id or row[1] not in _ANSWERABLE:
        raise NotFound(f"event {event_id} is not a user turn of chat {chat_id}")


_ANSWERABLE = frozenset({"user_turn", "user_turn_edit", "chat_created"})


def _hide(conn: Connection, chat_id: str, event_id: int, by: int) -> None:
    conn.execute("UPDATE event_log SET superseded_by = ? WHERE id = ?", (by, event_id))
    conn.execute("DELETE FROM timeline WHERE chat_id = ? AND event_id = ?", (chat_id, event_id))


def _forget_beat(conn: Connection, event_id: int) -> None:
    """A regenerated beat's memories go with it: the new beat writes its own."""
    for (memory_id,) in conn.execute(
        "SELECT id FROM memories WHERE source_event_id = ?", (event_id,)
    ).fetchall():
        conn.execute("DELETE FROM memories_fts WHERE rowid = ?", (memory_id,))
        conn.execute("DELETE FROM memories WHERE id = ?", (memory_id,))


# --- the world ---


def you_updated(conn: Connection, _id: int, _at: str, e: ev.YouUpdated) -> None:
    conn.execute(
        "UPDATE entities SET name = ?, persona = ? WHERE id = ?", (e.name, e.persona, YOU_ID)
    )


def bot_created(conn: Connection, id: int, _at: str, e: ev.BotCreated) -> None:
    if e.bot_id == YOU_ID or _one(conn, "SELECT 1 FROM entities WHERE id = ?", e.bot_id):
        raise Invalid(f"the id {e.bot_id!r} is taken")
    conn.execute(
        "INSERT INTO entities(id, kind, name, persona, greeting, created_event) "
        "VALUES (?, 'bot', ?, ?, ?, ?)",
        (e.bot_id, e.name, e.persona, e.greeting, id),
    )


def persona_created(conn: Connection, id: int, _at: str, e: ev.PersonaCreated) -> None:
    if e.persona_id == YOU_ID or _one(conn, "SELECT 1 FROM entities WHERE id = ?", e.persona_id):
        raise Invalid(f"the id {e.persona_id!r} is taken")
    conn.execute(
        "INSERT INTO entities(id, kind, name, persona, created_event) "
        "VALUES (?, 'person', ?, ?, ?)",
        (e.persona_id, e.name, e.persona, id),
    )


def persona_updated(conn: Connection, _id: int, _at: str, e: ev.PersonaUpdated) -> None:
    row = _one(conn, "SELECT kind FROM entities WHERE id = ?", e.persona_id)
    if row is None or row[0] != "person":
        raise NotFound(f"there is no persona {e.persona_id!r} (``you`` changes by you_updated)")
    if e.name is not None and not e.name.strip():
        raise Invalid("a persona's name must not be empty")
    for column, value in (("name", e.name), ("persona", e.persona)):
        if value is not None:
            conn.execute(f"UPDATE entities SET {column} = ? WHERE id = ?", (value, e.persona_id))


def bot_updated(conn: Connection, _id: int, _at: str, e: ev.BotUpdated) -> None:
    _bot(conn, e.bot_id)
    if e.name is not None and not e.name.strip():
        raise Invalid("a bot's name must not be empty")
    for column, value in (("name", e.name), ("persona", e.persona), ("greeting", e.greeting)):
        if value is not None:
            conn.execute(f"UPDATE entities SET {column} = ? WHERE id = ?", (value, e.bot_id))


def bot_deleted(conn: Connection, _id: int, _at: str, e: ev.BotDeleted) -> None:
    _bot(conn, e.bot_id)
    # Flagged, not dropped: old turns, memories and edges still name the bot,
    # and a chat it hosts keeps its history.
    conn.execute("UPDATE entities SET deleted = 1 WHERE id = ?", (e.bot_id,))
    # A chat it hosts keeps it (such a bot cannot be deleted; older logs may hold one).
    chats = [
        row[0]
        for row in conn.execute(
            "SELECT chat_id FROM chat_cast WHERE bot_id = ? AND position > 0", (e.bot_id,)
        )
    ]
    for chat_id in chats:
        conn.execute("DELETE FROM chat_cast WHERE chat_id = ? AND bot_id = ?", (chat_id, e.bot_id))
        _recast(conn, chat_id)


def location_created(conn: Connection, _id: int, _at: str, e: ev.LocationCreated) -> None:
    conn.execute(
        "INSERT INTO locations(name, description) VALUES (?, ?) "
        "ON CONFLICT(name) DO UPDATE SET description = excluded.description",
        (e.name, e.description),
    )


def _location(conn: Connection, name: str | None) -> None:
    if name:
        conn.execute("INSERT INTO locations(name) VALUES (?) ON CONFLICT DO NOTHING", (name,))


def remember_place(conn: Connection, event: Any) -> None:
    """A place a chat or scene named stays known, whichever branch named it."""
    if isinstance(event, ev.ChatCreated | ev.SceneOpened):
        _location(conn, event.location)


# --- chats and turns ---


def chat_created(conn: Connection, id: int, at: str, e: ev.ChatCreated) -> None:
    if _one(conn, "SELECT 1 FROM chats WHERE id = ?", e.chat_id):
        raise Invalid(f"the chat id {e.chat_id!r} is taken")
    members = e.members
    if e.guest_bot_id == e.host_bot_id:
        raise Invalid("the guest must be another bot than the host")
    if e.cast and (members[0], e.guest_bot_id) != (
        e.host_bot_id,
        members[1] if len(members) > 1 else None,
    ):
        raise Invalid("the host and the guest are the cast's first and second bots")
    if len(set(members)) != len(members):
        raise Invalid("a cast names each bot once")
    if len(members) > MAX_CAST:
        raise Invalid(f"a cast holds at most {MAX_CAST} bots")
    for bot_id in members:
        _bot(conn, bot_id)
    if e.continue_from is not None:
        _chat(conn, e.continue_from)
    _location(conn, e.location)
    conn.execute(
        "INSERT INTO chats(id, title, host_bot_id, guest_bot_id, location, created_at, "
        "created_event) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (e.chat_id, e.title, e.host_bot_id, e.guest_bot_id, e.location, at, id),
    )
    for position, bot_id in enumerate(members):
        conn.execute(
            "INSERT INTO chat_cast(chat_id, bot_id, position) VALUES (?, ?, ?)",
            (e.chat_id, bot_id, position),
        )
    # The chat's first branch is its root, named by the chat_created event.
    conn.execute(
        "INSERT INTO branches(chat_id, branch_id) VALUES (?, ?) ON CONFLICT DO NOTHING",
        (e.chat_id, id),
    )
    conn.execute(
        "INSERT INTO chat_branch(chat_id, current) VALUES (?, ?) "
        "ON CONFLICT(chat_id) DO UPDATE SET current = excluded.current",
        (e.chat_id, id),
    )


_LAST = "SELECT max(position) FROM chat_cast WHERE chat_id = ?"


_SETTINGS = ("temperature", "top_p", "min_p", "repeat_penalty", "max_tokens")


def chat_settings_updated(conn: Connection, _id: int, _at: str, e: ev.ChatSettingsUpdated) -> None:
    _chat(conn, e.chat_id)
    changes = ChatSettings(*(getattr(e, name) for name in _SETTINGS))
    problem = sampler_problem(changes)
    if problem is not None:
        raise Invalid(problem)
    conn.execute(
        "INSERT INTO chat_settings(chat_id) VALUES (?) ON CONFLICT DO NOTHING", (e.chat_id,)
    )
    given = [name for name in _SETTINGS if getattr(e, name) is not None]
    if given:
        assignments = ", ".join(f"{name} = ?" for name in given)
        conn.execute(
            f"UPDATE chat_settings SET {assignments} WHERE chat_id = ?",
            (*(getattr(e, name) for name in given), e.chat_id),
        )


def cast_added(conn: Connection, _id: int, _at: str, e: ev.CastAdded) -> None:
    _chat(conn, e.chat_id)
    _bot(conn, e.bot_id)
    rows = conn.execute(
        "SELECT bot_id, position FROM chat_cast WHERE chat_id = ?", (e.chat_id,)
    ).fetchall()
    if any(bot_id == e.bot_id for bot_id, _ in rows):
        raise Invalid(f"{e.bot_id!r} is already in the cast of chat {e.chat_id}")
    if len(rows) >= MAX_CAST:
        raise Invalid(f"chat {e.chat_id} has a full cast: at most {MAX_CAST} bots")
    conn.execute(
        "INSERT INTO chat_cast(chat_id, bot_id, position, present) VALUES (?, ?, ?, 1)",
        (e.chat_id, e.bot_id, _one(conn, _LAST, e.chat_id)[0] + 1),
    )
    _recast(conn, e.chat_id)


def cast_removed(conn: Connection, _id: int, _at: str, e: ev.CastRemoved) -> None:
    position, _present = _member(conn, e.chat_id, e.bot_id)
    if position == 0:
        raise Invalid(f"{e.bot_id!r} hosts chat {e.chat_id}; the host stays in its cast")
    conn.execute("DELETE FROM chat_cast WHERE chat_id = ? AND bot_id = ?", (e.chat_id, e.bot_id))
    _recast(conn, e.chat_id)


def presence_changed(conn: Connection, _id: int, _at: str, e: ev.PresenceChanged) -> None:
    _position, present = _member(conn, e.chat_id, e.bot_id)
    if present == e.present:
        where = "in" if present else "out of"
        raise Invalid(f"{e.bot_id!r} is already {where} the scene of chat {e.chat_id}")
    if not e.present and present_bots(conn, e.chat_id) == (e.bot_id,):
        raise Invalid(f"{e.bot_id!r} is the last character in the scene; someone must stay")
    conn.execute(
        "UPDATE chat_cast SET present = ? WHERE chat_id = ? AND bot_id = ?",
        (int(e.present), e.chat_id, e.bot_id),
    )


def mute_changed(conn: Connection, _id: int, _at: str, e: ev.MuteChanged) -> None:
    _member(conn, e.chat_id, e.bot_id)
    muted = _one(
        conn, "SELECT muted FROM chat_cast WHERE chat_id = ? AND bot_id = ?", e.chat_id, e.bot_id
    )[0]
    if bool(muted) and e.muted:
        raise Invalid(f"{e.bot_id!r} is already muted in chat {e.chat_id}")
    if not muted and not e.muted:
        raise Invalid(f"{e.bot_id!r} is not muted in chat {e.chat_id}; there is nothing to unmute")
    conn.execute(
        "UPDATE chat_cast SET muted = ? WHERE chat_id = ? AND bot_id = ?",
        (int(e.muted), e.chat_id, e.bot_id),
    )


def current_branch(conn: Connection, chat_id: str) -> int:
    """The chat's current branch (0 for a chat of an older log not yet rebuilt)."""
    row = _one(conn, "SELECT current FROM chat_branch WHERE chat_id = ?", chat_id)
    return int(row[0]) if row else 0


def _fork(conn: Connection, branch_id: int, chat_id: str, at_event_id: int) -> None:
    _chat(conn, chat_id)
    row = _one(conn, "SELECT chat_id FROM event_log WHERE id = ?", at_event_id)
    if row is None or row[0] != chat_id:
        raise NotFound(f"event {at_event_id} is not an event of chat {chat_id}")
    conn.execute(
        "INSERT INTO branches(chat_id, branch_id, parent_id, fork_event_id) "
        "VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
        (chat_id, branch_id, current_branch(conn, chat_id), at_event_id),
    )
    conn.execute("UPDATE chat_branch SET current = ? WHERE chat_id = ?", (branch_id, chat_id))


def chat_rewound(conn: Connection, id: int, _at: str, e: ev.ChatRewound) -> None:
    # The store re-projects the chat afterwards (see _branches): what came after
    # the point stays on the branch that was current.
    _fork(conn, id, e.chat_id, e.to_event_id)


def branch_forked(conn: Connection, id: int, _at: str, e: ev.BranchForked) -> None:
    _fork(conn, id, e.chat_id, e.at_event_id)


def branch_switched(conn: Connection, _id: int, _at: str, e: ev.BranchSwitched) -> None:
    _chat(conn, e.chat_id)
    if (
        _one(
            conn,
            "SELECT 1 FROM branches WHERE chat_id = ? AND branch_id = ?",
            e.chat_id,
            e.branch_id,
        )
        is None
    ):
        raise NotFound(f"chat {e.chat_id} has no branch {e.branch_id}")
    conn.execute("UPDATE chat_branch SET current = ? WHERE chat_id = ?", (e.branch_id, e.chat_id))


def _person(conn: Connection, person_id: str) -> None:
    row = _one(conn, "SELECT kind FROM entities WHERE id = ?", person_id)
    if row is None or row[0] not in ("you", "person"):
        raise NotFound(f"there is no persona {person_id!r}")


def _sit(conn: Connection, chat_id: str, person_id: str) -> None:
    """The persona is at the chat's table from now on (a no-op when it already is)."""
    conn.execute(
        "INSERT INTO chat_people(chat_id, person_id, position) VALUES (?, ?, "
        "(SELECT coalesce(max(position), -1) + 1 FROM chat_people WHERE chat_id = ?)) "
        "ON CONFLICT DO NOTHING",
        (chat_id, person_id, chat_id),
    )


def seat_taken(conn: Connection, _id: int, _at: str, e: ev.SeatTaken) -> None:
    _chat(conn, e.chat_id)
    _person(conn, e.persona_id)
    if _one(
        conn,
        "SELECT 1 FROM chat_people WHERE chat_id = ? AND person_id = ?",
        e.chat_id,
        e.persona_id,
    ):
        raise Invalid(f"{e.persona_id!r} is already at the table of chat {e.chat_id}")
    _sit(conn, e.chat_id, e.persona_id)


def user_turn(conn: Connection, id: int, _at: str, e: ev.UserTurn) -> None:
    _chat(conn, e.chat_id)
    person = e.person_id or YOU_ID
    _person(conn, person)
    _sit(conn, e.chat_id, person)  # whoever speaks is at the table
    user_line(conn, id, e, person, _present_json(conn, e.chat_id, e.present))


def user_line(conn: Connection, id: int, e: ev.UserTurn, person: str, present: str) -> None:
    """A user turn's timeline row, once its chat, seated speaker and who is present are known."""
    conn.execute(
        "INSERT INTO timeline(event_id, chat_id, kind, speaker_id, text, user_turn_id, "
        "present) VALUES (?, ?, 'user', ?, ?, ?, ?)",
        (id, e.chat_id, person, e.prose, id, present),
    )


def user_turn_edit(conn: Connection, id: int, at: str, e: ev.UserTurnEdit) -> None:
    _chat(conn, e.chat_id)
    _visible_turn(conn, e.supersedes, e.chat_id, "user")
    _hide(conn, e.chat_id, e.supersedes, id)
    edited = ev.UserTurn(e.chat_id, e.prose, e.segments, e.present, e.person_id)
    user_turn(conn, id, at, edited)


def assistant_turn_started(
    conn: Connection, id: int, _at: str, e: ev.AssistantTurnStarted
) -> None:
    _chat(conn, e.chat_id)
    beat_opened(conn, id, e)


def beat_opened(conn: Connection, id: int, e: ev.AssistantTurnStarted) -> None:
    """A beat's start, once its chat is known to exist."""
    _bot(conn, e.speaker_id, live=False)
    _user_turn_of(conn, e.user_turn_id, e.chat_id)
    conn.execute(
        "INSERT INTO open_beats(beat_id, chat_id, speaker_id, user_turn_id, interjection_of) "
        "VALUES (?, ?, ?, ?, ?)",
        (id, e.chat_id, e.speaker_id, e.user_turn_id, e.interjection_of),
    )


def assistant_turn(conn: Connection, id: int, _at: str, e: ev.AssistantTurn) -> None:
    _chat(conn, e.chat_id)
    assistant_line(conn, id, e, _present_json(conn, e.chat_id, e.present))


def assistant_line(conn: Connection, id: int, e: ev.AssistantTurn, present: str) -> None:
    """A beat's end, once its chat is known to exist and who is present is known."""
    _bot(conn, e.speaker_id, live=False)
    _user_turn_of(conn, e.user_turn_id, e.chat_id)
    if e.started_id is not None:
        beat = _one(conn, "SELECT chat_id FROM open_beats WHERE beat_id = ?", e.started_id)
        if beat is None or beat[0] != e.chat_id:
            raise Invalid(f"beat {e.started_id} is not open in chat {e.chat_id}")
    if e.supersedes is not None:
        _visible_turn(conn, e.supersedes, e.chat_id, "assistant")
    if e.started_id is not None:
        conn.execute("DELETE FROM open_beats WHERE beat_id = ?", (e.started_id,))
        conn.execute("DELETE FROM beat_checkpoints WHERE beat_id = ?", (e.started_id,))
    if e.supersedes is not None:
        _hide(conn, e.chat_id, e.supersedes, id)
        _forget_beat(conn, e.supersedes)
    conn.execute(
        "INSERT INTO timeline(event_id, chat_id, kind, speaker_id, text, truncated, "
        "interjection_of, user_turn_id, present) VALUES (?, ?, 'assistant', ?, ?, ?, ?, ?, ?)",
        (
            id,
            e.chat_id,
            e.speaker_id,
            e.text,
            int(e.truncated),
            e.interjection_of,
            e.user_turn_id,
            present,
        ),
    )


def beat_continued(conn: Connection, _id: int, _at: str, e: ev.BeatContinued) -> None:
    _chat(conn, e.chat_id)
    _visible_turn(conn, e.event_id, e.chat_id, "assistant")
    # The beat's row holds its whole text: what it said, then what it went on to say.
    conn.execute(
        "UPDATE timeline SET text = text || ?, truncated = ? WHERE chat_id = ? AND event_id = ?",
        (e.text, int(e.truncated), e.chat_id, e.event_id),
    )


# --- memories ---


def memory_written(conn: Connection, id: int, _at: str, e: ev.MemoryWritten) -> None:
    _chat(conn, e.chat_id)
    _bot(conn, e.bot_id, live=False)
    if e.scene_id is not None:
        _scene_of(conn, e.scene_id, e.chat_id)
    conn.execute(
        "INSERT INTO memories(id, bot_id, chat_id, scene_id, text, source_event_id) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (id, e.bot_id, e.chat_id, e.scene_id, e.text, e.source_event_id),
    )
    conn.execute("INSERT INTO memories_fts(rowid, text) VALUES (?, ?)", (id, e.text))


def memory_scored(conn: Connection, _id: int, _at: str, e: ev.MemoryScored) -> None:
    _memory(conn, e.memory_id, e.chat_id)
    conn.execute(
        "UPDATE memories SET significance = ? WHERE id = ?", (e.significance, e.memory_id)
    )


def memory_pinned(conn: Connection, _id: int, _at: str, e: ev.MemoryPinned) -> None:
    _memory(conn, e.memory_id, e.chat_id)
    conn.execute("UPDATE memories SET pinned = 1, pinned_by = ? WHERE id = ?", (e.by, e.memory_id))


def memory_unpinned(conn: Connection, _id: int, _at: str, e: ev.MemoryUnpinned) -> None:
    _memory(conn, e.memory_id, e.chat_id)
    conn.execute("UPDATE memories SET pinned = 0, pinned_by = NULL WHERE id = ?", (e.memory_id,))


# --- relationships ---


def edge_update(conn: Connection, _id: int, at: str, e: ev.EdgeUpdate) -> None:
    if e.chat_id is not None:
        _chat(conn, e.chat_id)
    _entity(conn, e.source_id)
    _entity(conn, e.target_id)
    if e.source_id == e.target_id:
        raise Invalid("an edge joins two different entities")
    chat_id = e.chat_id or ""  # an older log's edge without a chat belongs to none
    row = _one(
        conn,
        "SELECT affinity, trust, summary, facts FROM edges "
        "WHERE chat_id = ? AND source_id = ? AND target_id = ?",
        chat_id,
        e.source_id,
        e.target_id,
    )
    affinity, trust, summary, facts_json = row if row else (*DEFAULT_EDGE, "", "[]")
    facts: list[str] = json.loads(facts_json)
    for fact in e.knowledge_facts:
        fact = fact.strip()
        if fact and fact not in facts:
            facts.append(fact)
    facts = facts[-MAX_KNOWN_FACTS:]
    conn.execute(
        "INSERT INTO edges(chat_id, source_id, target_id, affinity, trust, summary, facts, "
        "last_at, last_chat_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT(chat_id, source_id, target_id) DO UPDATE SET affinity = excluded.affinity, "
        "trust = excluded.trust, summary = excluded.summary, facts = excluded.facts, "
        "last_at = excluded.last_at, last_chat_id = excluded.last_chat_id",
        (
            chat_id,
            e.source_id,
            e.target_id,
            clamp(affinity + e.affinity_delta),
            clamp(trust + e.trust_delta),
            e.summary if e.summary is not None else summary,
            json.dumps(facts, ensure_ascii=False),
            at,
            e.chat_id,
        ),
    )


# --- scenes ---


def scene_opened(conn: Connection, id: int, at: str, e: ev.SceneOpened) -> None:
    _chat(conn, e.chat_id)
    if _one(conn, "SELECT id FROM scenes WHERE chat_id = ? AND closed_at IS NULL", e.chat_id):
        raise Invalid(f"chat {e.chat_id} already has an open scene")
    _location(conn, e.location)
    conn.execute(
        "INSERT INTO scenes(id, chat_id, location, opened_at) VALUES (?, ?, ?, ?)",
        (id, e.chat_id, e.location, at),
    )
    if e.location:
        conn.execute("UPDATE chats SET location = ? WHERE id = ?", (e.location, e.chat_id))


def _scene_of(conn: Connection, scene_id: int, chat_id: str) -> Any:
    row = _one(conn, "SELECT chat_id, closed_at FROM scenes WHERE id = ?", scene_id)
    if row is None or row[0] != chat_id:
        raise NotFound(f"scene {scene_id} is not a scene of chat {chat_id}")
    return row


def scene_closed(conn: Connection, _id: int, at: str, e: ev.SceneClosed) -> None:
    row = _scene_of(conn, e.scene_id, e.chat_id)
    if row[1] is not None:
        raise Invalid(f"scene {e.scene_id} is already closed")
    conn.execute(
        "UPDATE scenes SET closed_at = ?, close_reason = ? WHERE id = ?",
        (at, e.reason, e.scene_id),
    )


def scene_summary(conn: Connection, _id: int, _at: str, e: ev.SceneSummary) -> None:
    _scene_of(conn, e.scene_id, e.chat_id)
    _bot(conn, e.bot_id, live=False)
    conn.execute(
        "INSERT INTO scene_summaries(scene_id, bot_id, text) VALUES (?, ?, ?) "
        "ON CONFLICT(scene_id, bot_id) DO UPDATE SET text = excluded.text",
        (e.scene_id, e.bot_id, e.text),
    )


# --- world events ---

_MOVES = {ev.KIND_OF[event]: (moved_from(to), to) for to, event in MOVE_EVENTS.items()}
"""Each move's kind: the statuses it may leave, and the one it reaches (the protocol's table)."""


def world_event_created(conn: Connection, id: int, _at: str, e: ev.WorldEventCreated) -> None:
    _chat(conn, e.chat_id)
    conn.execute(
        "INSERT INTO world_events(id, chat_id, title, description, status, artifacts) "
        "VALUES (?, ?, ?, ?, 'planned', ?)",
        (
            id,
            e.chat_id,
            e.title,
            e.description,
            json.dumps(converter.unstructure(e.artifacts), ensure_ascii=False),
        ),
    )


def _world_event_of(conn: Connection, world_event_id: int, chat_id: str) -> str:
    row = _one(conn, "SELECT chat_id, status FROM world_events WHERE id = ?", world_event_id)
    if row is None or row[0] != chat_id:
        raise NotFound(f"there is no world event {world_event_id} in chat {chat_id}")
    return str(row[1])


def _world_move(kind: str) -> Handler:
    allowed, to = _MOVES[kind]

    def move(conn: Connection, _id: int, _at: str, e: Any) -> None:
        status = _world_event_of(conn, e.world_event_id, e.chat_id)
        if status not in allowed:
            raise Invalid(f"world event {e.world_event_id} is {status}; it cannot become {to}")
        conn.execute("UPDATE world_events SET status = ? WHERE id = ?", (to, e.world_event_id))

    return move


def object_acquired(conn: Connection, id: int, _at: str, e: ev.ObjectAcquired) -> None:
    _chat(conn, e.chat_id)
    _entity(conn, e.holder_id)
    if e.world_event_id is not None:
        _world_event_of(conn, e.world_event_id, e.chat_id)
    conn.execute(
        "INSERT INTO inventory(id, holder_id, name, chat_id, world_event_id) "
        "VALUES (?, ?, ?, ?, ?)",
        (id, e.holder_id, e.name, e.chat_id, e.world_event_id),
    )


# --- cards and lorebooks ---


def bot_card(conn: Connection, _id: int, _at: str, e: ev.BotCard) -> None:
    _bot(conn, e.bot_id)
    if (
        e.avatar is not None
        and _one(conn, "SELECT 1 FROM blobs WHERE sha256 = ?", e.avatar) is None
    ):
        raise Invalid(f"the avatar {e.avatar} of {e.bot_id!r}'s card was never stored")
    conn.execute(
        "INSERT INTO bot_cards(bot_id, spec, document, avatar) VALUES (?, ?, ?, ?) "
        "ON CONFLICT(bot_id) DO UPDATE SET spec = excluded.spec, "
        "document = excluded.document, avatar = excluded.avatar",
        (e.bot_id, e.spec, e.document, e.avatar),
    )


def lorebook_imported(conn: Connection, _id: int, _at: str, e: ev.LorebookImported) -> None:
    if _one(conn, "SELECT 1 FROM lorebooks WHERE lorebook_id = ?", e.lorebook_id):
        raise Invalid(f"the lorebook id {e.lorebook_id!r} is taken")
    conn.execute(
        "INSERT INTO lorebooks(lorebook_id, name, format, document, entries) "
        "VALUES (?, ?, ?, ?, ?)",
        (e.lorebook_id, e.name, e.format, e.document, e.entries),
    )


def chat_imported(conn: Connection, _id: int, _at: str, e: ev.ChatImported) -> None:
    _chat(conn, e.chat_id)  # the lines stay in the log, read back on export


# --- steering: lore and the author's note ---


def lorebook_attached(conn: Connection, id: int, _at: str, e: ev.LorebookAttached) -> None:
    _chat(conn, e.chat_id)
    if _one(conn, "SELECT 1 FROM lorebooks WHERE lorebook_id = ?", e.lorebook_id) is None:
        raise NotFound(f"there is no lorebook {e.lorebook_id!r}")
    if _attached(conn, e.chat_id, e.lorebook_id):
        raise Invalid(f"lorebook {e.lorebook_id!r} is already attached to chat {e.chat_id}")
    conn.execute(
        "INSERT INTO chat_lorebooks(chat_id, lorebook_id, attached_event) VALUES (?, ?, ?)",
        (e.chat_id, e.lorebook_id, id),
    )


def lorebook_detached(conn: Connection, _id: int, _at: str, e: ev.LorebookDetached) -> None:
    _chat(conn, e.chat_id)
    if not _attached(conn, e.chat_id, e.lorebook_id):
        raise Invalid(f"lorebook {e.lorebook_id!r} is not attached to chat {e.chat_id}")
    conn.execute(
        "DELETE FROM chat_lorebooks WHERE chat_id = ? AND lorebook_id = ?",
        (e.chat_id, e.lorebook_id),
    )


def _attached(conn: Connection, chat_id: str, lorebook_id: str) -> bool:
    sql = "SELECT 1 FROM chat_lorebooks WHERE chat_id = ? AND lorebook_id = ?"
    return _one(conn, sql, chat_id, lorebook_id) is not None


def author_note_set(conn: Connection, _id: int, _at: str, e: ev.AuthorNoteSet) -> None:
    _chat(conn, e.chat_id)
    problem = author_note_problem(e.text, e.depth)
    if problem is not None:
        raise Invalid(problem)
    if not e.text.strip():
        conn.execute("DELETE FROM author_notes WHERE chat_id = ?", (e.chat_id,))
        return
    conn.execute(
        "INSERT INTO author_notes(chat_id, text, depth) VALUES (?, ?, ?) "
        "ON CONFLICT(chat_id) DO UPDATE SET text = excluded.text, depth = excluded.depth",
        (e.chat_id, e.text, e.depth),
    )


HANDLERS: dict[str, Handler] = {
    "you_updated": you_updated,
    "bot_created": bot_created,
    "bot_updated": bot_updated,
    "bot_deleted": bot_deleted,
    "location_created": location_created,
    "chat_created": chat_created,
    "chat_rewound": chat_rewound,
    "branch_forked": branch_forked,
    "branch_switched": branch_switched,
    "user_turn": user_turn,
    "user_turn_edit": user_turn_edit,
    "assistant_turn_started": assistant_turn_started,
    "assistant_turn": assistant_turn,
    "beat_continued": beat_continued,
    "memory_written": memory_written,
    "memory_scored": memory_scored,
    "memory_pinned": memory_pinned,
    "memory_unpinned": memory_unpinned,
    "edge_update": edge_update,
    "scene_opened": scene_opened,
    "scene_closed": scene_closed,
    "scene_summary": scene_summary,
    "world_event_created": world_event_created,
    "world_event_started": _world_move("world_event_started"),
    "world_event_completed": _world_move("world_event_completed"),
    "world_event_cancelled": _world_move("world_event_cancelled"),
    "object_acquired": object_acquired,
    "cast_added": cast_added,
    "cast_removed": cast_removed,
    "presence_changed": presence_changed,
    "mute_changed": mute_changed,
    "bot_card": bot_card,
    "lorebook_imported": lorebook_imported,
    "chat_imported": chat_imported,
    "lorebook_attached": lorebook_attached,
    "lorebook_detached": lorebook_detached,
    "author_note_set": author_note_set,
    "persona_created": persona_created,
    "persona_updated": persona_updated,
    "seat_taken": seat_taken,
    "chat_settings_updated": chat_settings_updated,
}
assert set(HANDLERS) == set(ev.EVENT_KINDS), "every event kind has a projection"


def seed_projections(conn: Connection) -> None:
    """What a fresh set of projection tables holds before any event: the user."""
    conn.execute(
        "INSERT INTO entities(id, kind, name, persona) VALUES (?, 'you', 'You', '') "
        "ON CONFLICT DO NOTHING",
        (YOU_ID,),
    )
