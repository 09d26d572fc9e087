"""What the turn flow reads: each query hits one index and looks at one chat or one bot.

None of them scans the log: they read the projection tables, which hold only
what is visible, through indexes keyed by chat or bot, so their cost follows
what is asked for, not how long the story (or any other chat) has grown.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from typing import Any

from protocol import (
    OPEN_STATUSES,
    YOU_ID,
    Artifacts,
    AuthorNote,
    Bot,
    Chat,
    ChatSettings,
    Edge,
    Entity,
    Memory,
    QueuedTurn,
    Scene,
    Turn,
    blank_edge,
    load_event,
    load_stored,
)

from ._conn import Connection
from ._project import people_of
from ._records import StoredEvent, WorldEventRow

_BOT = (
    "SELECT e.id, e.name, e.persona, e.greeting, c.bot_id IS NOT NULL, c.avatar "
    "FROM entities e LEFT JOIN bot_cards c ON c.bot_id = e.id "
    "WHERE e.kind = 'bot' AND e.deleted = 0"
)
_CHAT = "SELECT id, title, host_bot_id, guest_bot_id, location, created_at FROM chats"
_TURN = (
    "SELECT event_id, kind, speaker_id, text, truncated, interjection_of, user_turn_id "
    "FROM timeline"
)
_PEOPLE = "SELECT person_id FROM chat_people WHERE chat_id = ? ORDER BY position"
_MEMORY = "SELECT id, bot_id, chat_id, text, significance, pinned FROM memories"
_WORDS = re.compile(r"\w{2,}")
MAX_SEARCH_WORDS = 24
"""Words of a text that a memory search looks for; the rest only slow it down."""


def _turn(row: Sequence[Any]) -> Turn:
    event_id, kind, speaker, text, truncated, interjection_of, user_turn_id = row
    return Turn(event_id, kind, speaker, text, bool(truncated), interjection_of, user_turn_id)


def avatar_url(bot_id: str) -> str:
    """Where the gateway serves a bot's avatar image."""
    return f"/api/bots/{bot_id}/avatar"


def _bot(row: Sequence[Any]) -> Bot:
    id_, name, persona, greeting, card, avatar = row
    return Bot(id_, name, persona, greeting, bool(card), avatar_url(id_) if avatar else None)


def _memory(row: Sequence[Any]) -> Memory:
    id_, bot_id, chat_id, text, significance, pinned = row
    return Memory(id_, bot_id, chat_id, text, significance, bool(pinned))


def _world_event(row: Sequence[Any]) -> WorldEventRow:
    id_, chat_id, title, description, status, artifacts = row
    return WorldEventRow(
        id_,
        title,
        description,
        status,
        load_stored(json.loads(artifacts), Artifacts),
        chat_id,
    )


def search_query(text: str) -> str | None:
    """An FTS5 query matching any word of ``text``, each quoted so none reads as syntax."""
    words = list(dict.fromkeys(w.lower() for w in _WORDS.findall(text)))[:MAX_SEARCH_WORDS]
    # \w never matches a double quote, so quoting each word is enough.
    return " OR ".join(f'"{w}"' for w in words) or None


class Queries:
    """The read side of :class:`store.Store`."""

    conn: Connection

    def _one(self, sql: str, *args: object) -> Any:
        for row in self.conn.execute(sql, args):
            return row
        return None

    # --- who ---

    def get_you(self) -> Entity:
        """The person playing (id ``you``)."""
        name, persona = self._one("SELECT name, persona FROM entities WHERE id = ?", YOU_ID)
        return Entity(YOU_ID, name, persona)

    def get_persona(self, persona_id: str) -> Entity | None:
        """A persona (``you`` included), or None."""
        row = self._one(
            "SELECT id, name, persona FROM entities WHERE id = ? AND kind IN ('you', 'person')",
            persona_id,
        )
        return Entity(*row) if row else None

    def list_personas(self) -> list[Entity]:
        """Every persona: ``you`` first, then the others, oldest first."""
        rows = self.conn.execute(
            "SELECT id, name, persona FROM entities WHERE kind IN ('you', 'person') "
            "ORDER BY kind = 'person', created_event"
        )
        return [Entity(*row) for row in rows]

    def people_of(self, chat_id: str) -> tuple[str, ...]:
        """The personas at the chat's table in the order they came; ``you`` alone before any."""
        return people_of(self.conn, chat_id)

    def queued_turns(self, chat_id: str) -> tuple[QueuedTurn, ...]:
        """The turns waiting in the chat's queue, next first."""
        rows = self.conn.execute(
            "SELECT id, person_id, prose, reply_as FROM turn_queue WHERE chat_id = ? ORDER BY id",
            (chat_id,),
        )
        return tuple(QueuedTurn(*row) for row in rows)

    def chats_with_queued_turns(self) -> list[str]:
        """The chats whose queue holds turns (a crash left them waiting)."""
        return [r[0] for r in self.conn.execute("SELECT DISTINCT chat_id FROM turn_queue")]

    def get_bot(self, bot_id: str) -> Bot | None:
        """A bot that is not deleted, or None."""
        row = self._one(_BOT + " AND e.id = ?", bot_id)
        return _bot(row) if row else None

    def list_bots(self) -> list[Bot]:
        """Every bot that is not deleted, oldest first."""
        return [_bot(row) for row in self.conn.execute(_BOT + " ORDER BY e.created_event")]

    def get_entity(self, entity_id: str) -> Entity | None:
        """The user or a bot, deleted bots included (old turns still name them)."""
        row = self._one("SELECT id, name, persona FROM entities WHERE id = ?", entity_id)
        return Entity(*row) if row else None

    # --- chats and their turns ---

    def get_chat(self, chat_id: str) -> Chat | None:
        """A chat with its cast and who is in its scene, or None."""
        row = self._one(_CHAT + " WHERE id = ?", chat_id)
        return self._chat(row) if row else None

    def list_chats(self) -> list[Chat]:
        """Every chat, newest first."""
        rows = self.conn.execute(_CHAT + " ORDER BY created_event DESC").fetchall()
        return [self._chat(row) for row in rows]

    def _chat(self, row: Sequence[Any]) -> Chat:
        id_, title, host, guest, location, created_at = row
        rows: list[tuple[str, int, int]] = list(
            self.conn.execute(
                "SELECT bot_id, present, muted FROM chat_cast WHERE chat_id = ? ORDER BY position",
                (id_,),
            )
        )
        return Chat(
            id_,
            title,
            host,
            guest,
            location,
            created_at,
            cast=tuple(bot_id for bot_id, _, _ in rows),
            present=tuple(bot_id for bot_id, present, _ in rows if present),
            muted=tuple(bot_id for bot_id, _, muted in rows if muted),
            people=tuple(r[0] for r in self.conn.execute(_PEOPLE, (id_,))),
        )

    def cast_of(self, chat_id: str) -> list[tuple[str, bool]]:
        """The chat's cast in order (the host first), each bot with whether it is in the scene."""
        rows = self.conn.execute(
            "SELECT bot_id, present FROM chat_cast WHERE chat_id = ? ORDER BY position",
            (chat_id,),
        )
        return [(bot_id, bool(present)) for bot_id, present in rows]

    def muted_bots(self, chat_id: str) -> list[str]:
        """The chat's cast members who answer only when forced, in cast order."""
        rows = self.conn.execute(
            "SELECT bot_id FROM chat_cast WHERE chat_id = ? AND muted = 1 ORDER BY position",
            (chat_id,),
        )
        return [row[0] for row in rows]

    def present_bots(self, chat_id: str) -> list[str]:
        """The chat's cast members in the scene now, in cast order."""
        return [bot_id for bot_id, present in self.cast_of(chat_id) if present]

    def timeline(self, chat_id: str) -> list[Turn]:
        """The chat's visible turns, oldest first (all of them: see :meth:`latest_turns`)."""
        rows = self.conn.execute(_TURN + " WHERE chat_id = ? ORDER BY event_id", (chat_id,))
        return [_turn(row) for row in rows]

    def latest_turns(
        self, chat_id: str, limit: int, before_event_id: int | None = None
    ) -> tuple[list[Turn], bool]:
        """The chat's newest ``limit`` visible turns (before ``before_event_id``, if given),
        oldest first, and whether older ones are left.

        One backwards range scan of the chat's clustered key that stops after
        ``limit + 1`` rows: its cost follows ``limit``, not the chat's length.
        """
        before = "" if before_event_id is None else " AND event_id < ?"
        args = (chat_id,) if before_event_id is None else (chat_id, before_event_id)
        rows = list(
            self.conn.execute(
                _TURN + " WHERE chat_id = ?" + before + " ORDER BY event_id DESC LIMIT ?",
                (*args, limit + 1),
            )
        )
        return [_turn(row) for row in reversed(rows[:limit])], len(rows) > limit

    def event_chat(self, event_id: int) -> str | None:
        """The chat an event of the log belongs to (hidden or not); None when there is none."""
        row = self._one("SELECT chat_id FROM event_log WHERE id = ?", event_id)
        return row[0] if row else None

    def recent_dialogue(
        self,
        chat_id: str,
        limit: int = 20,
        after_event_id: int | None = None,
        witness: str | None = None,
    ) -> list[Turn]:
        """The chat's newest ``limit`` visible turns, oldest first, for a prompt.

        ``after_event_id`` leaves out what came before it, e.g. before a guest
        entered the scene; ``witness`` keeps only the turns that entity was
        present for. One backwards range scan of the chat's index.
        """
        seen = ""
        args: tuple[object, ...] = (chat_id, after_event_id or 0, limit)
        if witness is not None:
            seen = " AND EXISTS (SELECT 1 FROM json_each(present) WHERE value = ?)"
            args = (chat_id, after_event_id or 0, witness, limit)
        rows = list(
            self.conn.execute(
                _TURN
                + " WHERE chat_id = ? AND event_id > ?"
                + seen
                + " ORDER BY event_id DESC LIMIT ?",
                args,
            )
        )
        return [_turn(row) for row in reversed(rows)]

    def witnesses(self, chat_id: str, event_id: int) -> tuple[str, ...]:
        """Who was present for one visible turn of the chat (you included); () if none."""
        row = self._one(
            "SELECT present FROM timeline WHERE chat_id = ? AND event_id = ?", chat_id, event_id
        )
        return tuple(json.loads(row[0])) if row and row[0] else ()

    def witnesses_of(self, chat_id: str, event_ids: Sequence[int]) -> dict[int, tuple[str, ...]]:
        """:meth:`witnesses` of many turns in one read: those with anyone present, by id."""
        if not event_ids:
            return {}
        marks = ", ".join("?" * len(event_ids))
        rows = self.conn.execute(
            f"SELECT event_id, present FROM timeline WHERE chat_id = ? AND event_id IN ({marks})",
            (chat_id, *event_ids),
        )
        return {int(event_id): tuple(json.loads(present)) for event_id, present in rows if present}

    def turn_of(self, chat_id: str, event_id: int) -> Turn | None:
        """The chat's visible turn ``event_id`` (on its current branch), or None."""
        row = self._one(_TURN + " WHERE chat_id = ? AND event_id = ?", chat_id, event_id)
        return _turn(row) if row else None

    def latest_turn(self, chat_id: str) -> Turn | None:
        """The chat's newest visible turn, the person's or a beat; None before the first."""
        row = self._one(_TURN + " WHERE chat_id = ? ORDER BY event_id DESC LIMIT 1", chat_id)
        return _turn(row) if row else None

    def latest_assistant_turn(self, chat_id: str) -> Turn | None:
        """The chat's newest visible assistant turn (what regenerate may replace), or None."""
        row = self._one(
            _TURN + " WHERE chat_id = ? AND kind = 'assistant' ORDER BY event_id DESC LIMIT 1",
            chat_id,
        )
        return _turn(row) if row else None

    def open_beats(self, chat_id: str) -> list[int]:
        """Beats of the chat that started and have not ended, oldest first."""
        rows = self.conn.execute(
            "SELECT beat_id FROM open_beats WHERE chat_id = ? ORDER BY beat_id", (chat_id,)
        )
        return [row[0] for row in rows]

    # --- the log ---

    def get_event(self, event_id: int) -> StoredEvent | None:
        """One row of the log, payload decoded, hidden or not; None if there is none."""
        row = self._one(
            "SELECT id, at, chat_id, kind, payload, superseded_by, rewound_by "
            "FROM event_log WHERE id = ?",
            event_id,
        )
        if row is None:
            return None
        id_, at, chat_id, kind, payload, superseded_by, rewound_by = row
        return StoredEvent(
            id_, at, chat_id, kind, load_event(kind, payload), superseded_by, rewound_by
        )

    def event_count(self) -> int:
        """How many events the log holds, hidden ones included."""
        return int(self._one("SELECT count(*) FROM event_log")[0])

    # --- relationships ---

    def get_edge(self, source_id: str, target_id: str, *, chat_id: str) -> Edge:
        """How ``source_id`` feels about ``target_id`` in one chat; 50/50 and blank when
        never touched there (what happened in another chat counts for nothing here)."""
        row = self._one(
            "SELECT affinity, trust, summary, facts FROM edges "
            "WHERE chat_id = ? AND source_id = ? AND target_id = ?",
            chat_id,
            source_id,
            target_id,
        )
        if row is None:
            return blank_edge(source_id, target_id)
        affinity, trust, summary, facts = row
        return Edge(source_id, target_id, affinity, trust, summary, tuple(json.loads(facts)))

    def edges_among(self, entity_ids: Iterable[str], *, chat_id: str) -> list[Edge]:
        """Every directed edge among these entities in one chat, defaults included, in a
        stable order."""
        ids = list(dict.fromkeys(entity_ids))
        return [self.get_edge(a, b, chat_id=chat_id) for a in ids for b in ids if a != b]

    def chat_edges(self, chat_id: str) -> list[Edge]:
        """Every edge the chat touched, in a stable order (what a chat carried on takes)."""
        rows = self.conn.execute(
            "SELECT source_id, target_id, affinity, trust, summary, facts FROM edges "
            "WHERE chat_id = ? ORDER BY source_id, target_id",
            (chat_id,),
        )
        return [Edge(a, b, aff, tr, summ, tuple(json.loads(f))) for a, b, aff, tr, summ, f in rows]

    # --- memories ---

    def get_memory(self, memory_id: int) -> Memory | None:
        """A memory, or None (also when a rewind took it away)."""
        row = self._one(_MEMORY + " WHERE id = ?", memory_id)
        return _memory(row) if row else None

    def list_memories(self, bot_id: str, chat_id: str | None = None) -> list[Memory]:
        """A bot's memories (of one chat, if given), oldest first."""
        if chat_id is None:
            rows = self.conn.execute(_MEMORY + " WHERE bot_id = ? ORDER BY id", (bot_id,))
        else:
            rows = self.conn.execute(
                _MEMORY + " WHERE chat_id = ? AND bot_id = ? ORDER BY id", (chat_id, bot_id)
            )
        return [_memory(row) for row in rows]

    def pinned_memories(self, bot_id: str, *, chat_id: str) -> list[Memory]:
        """A bot's pinned memories of one chat, oldest first: always in its prompt there."""
        rows = self.conn.execute(
            _MEMORY + " WHERE chat_id = ? AND bot_id = ? AND pinned = 1 ORDER BY id",
            (chat_id, bot_id),
        )
        return [_memory(row) for row in rows]

    def auto_pinned(self, bot_id: str, *, chat_id: str) -> list[Memory]:
        """A bot's automatic pins in one chat, least significant then oldest first: the
        eviction order (the cap holds per bot and chat)."""
        rows = self.conn.execute(
            _MEMORY + " WHERE chat_id = ? AND bot_id = ? AND pinned = 1 AND pinned_by = 'auto' "
            "ORDER BY significance, id",
            (chat_id, bot_id),
        )
        return [_memory(row) for row in rows]

    def relevant_memories(
        self, bot_id: str, text: str, limit: int = 5, exclude_pinned: bool = True, *, chat_id: str
    ) -> list[Memory]:
        """The bot's memories of one chat that best match ``text`` by full-text rank (bm25),
        best first; another chat's never come up.

        Any text is safe: its words are searched as quoted terms, so FTS5
        syntax in it (quotes, ``NEAR``, ``*``, ``-``) means nothing.
        """
        query = search_query(text)
        if query is None:
            return []
        sql = (
            "SELECT m.id, m.bot_id, m.chat_id, m.text, m.significance, m.pinned "
            "FROM memories_fts JOIN memories m ON m.id = memories_fts.rowid "
            "WHERE memories_fts MATCH ?1 AND m.chat_id = ?2 AND m.bot_id = ?3"
        )
        if exclude_pinned:
            sql += " AND m.pinned = 0"
        sql += " ORDER BY bm25(memories_fts), m.id LIMIT ?4"
        return [_memory(row) for row in self.conn.execute(sql, (query, chat_id, bot_id, limit))]

    # --- scenes, places, world events, objects ---

    def chat_settings(self, chat_id: str) -> ChatSettings:
        """The chat's sampler settings (all ``None``: the backend's defaults)."""
        row = self._one(
            "SELECT temperature, top_p, min_p, repeat_penalty, max_tokens FROM chat_settings"
            " WHERE chat_id = ?",
            chat_id,
        )
        return ChatSettings(*row) if row else ChatSettings()

    def active_scene(self, chat_id: str) -> Scene | None:
        """The chat's open scene, or None."""
        row = self._one(
            "SELECT id, location, opened_at FROM scenes WHERE chat_id = ? AND closed_at IS NULL",
            chat_id,
        )
        return Scene(*row) if row else None

    def scene_summaries(self, scene_id: int) -> dict[str, str]:
        """How each witness summed up a scene: bot id to text."""
        rows = self.conn.execute(
            "SELECT bot_id, text FROM scene_summaries WHERE scene_id = ? ORDER BY bot_id",
            (scene_id,),
        )
        return {bot_id: text for bot_id, text in rows}

    def closed_scenes(self, chat_id: str) -> list[Scene]:
        """The chat's closed scenes, oldest first."""
        rows = self.conn.execute(
            "SELECT id, location, opened_at FROM scenes "
            "WHERE chat_id = ? AND closed_at IS NOT NULL ORDER BY id",
            (chat_id,),
        )
        return [Scene(*row) for row in rows]

    def location_description(self, name: str) -> str | None:
        """What a location is like; None for a place never named."""
        row = self._one("SELECT description FROM locations WHERE name = ?", name)
        return row[0] if row else None

    def world_events(
        self, chat_id: str, statuses: Sequence[str] = OPEN_STATUSES
    ) -> list[WorldEventRow]:
        """The chat's world events with these statuses, oldest first."""
        marks = ",".join("?" for _ in statuses)
        rows = self.conn.execute(
            "SELECT id, chat_id, title, description, status, artifacts FROM world_events "
            f"WHERE chat_id = ? AND status IN ({marks}) ORDER BY id",
            (chat_id, *statuses),
        )
        return [_world_event(row) for row in rows]

    def get_world_event(self, world_event_id: int) -> WorldEventRow | None:
        """One world event, whatever its status, or None."""
        row = self._one(
            "SELECT id, chat_id, title, description, status, artifacts FROM world_events "
            "WHERE id = ?",
            world_event_id,
        )
        return _world_event(row) if row else None

    def inventory(self, holder_id: str, chat_id: str | None = None) -> list[str]:
        """The objects someone holds (in one chat, if given), in the order they got them."""
        if chat_id is None:
            rows = self.conn.execute(
                "SELECT name FROM inventory WHERE holder_id = ? ORDER BY id", (holder_id,)
            )
        else:
            rows = self.conn.execute(
                "SELECT name FROM inventory WHERE holder_id = ? AND chat_id = ? ORDER BY id",
                (holder_id, chat_id),
            )
        return [row[0] for row in rows]

    def chat_lorebooks(self, chat_id: str) -> list[str]:
        """The ids of the lorebooks attached to a chat, in the order they were attached."""
        rows = self.conn.execute(
            "SELECT lorebook_id FROM chat_lorebooks WHERE chat_id = ? ORDER BY attached_event",
            (chat_id,),
        )
        return [row[0] for row in rows]

    def author_note(self, chat_id: str) -> AuthorNote | None:
        """A chat's author's note, or None when it has none."""
        row = self._one("SELECT text, depth FROM author_notes WHERE chat_id = ?", chat_id)
        return AuthorNote(row[0], int(row[1])) if row else None
