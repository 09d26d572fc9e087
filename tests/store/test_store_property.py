"""The projection built event by event equals the one rebuilt from the log alone.

Hypothesis draws a list of moves; each move is turned into a valid event
against the store's current state (or skipped when it cannot be), so every
sequence is one the turn flow could produce: bots come and go, chats talk,
beats open and close, turns are regenerated and edited, memories are scored
and pinned, edges move, scenes open and close, world events run their course,
cards, lorebooks and imported chats arrive, and chats are rewound. After the
sequence, every projection table and every visibility mark must survive
``rebuild()`` unchanged.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from storeworld import Places, Where, dump_projections, open_store, said

from protocol import Artifacts, KnowledgeArtifact, ObjectArtifact
from protocol import events as ev
from store import Store, put_blob

T = TypeVar("T")
NAMES = ["Mira", "Tam", "Ora"]
PLACES = ["Inn", "Docks", "Cellar", None]
FACTS = ["has a key", "owes money", "fears the sea", "sings badly"]
PINNERS: list[ev.PinnedBy] = ["auto", "manual"]


def pick(items: Sequence[T], n: int) -> T:
    return items[n % len(items)]


class Moves:
    """Turns drawn numbers into valid events against a live store."""

    def __init__(self, store: Store) -> None:
        self.s = store

    # --- what exists ---

    def live_bots(self) -> list[str]:
        return [b.id for b in self.s.list_bots()]

    def all_bots(self) -> list[str]:
        rows = self.s.conn.execute("SELECT id FROM entities WHERE kind = 'bot' ORDER BY id")
        return [r[0] for r in rows]

    def chats(self) -> list[str]:
        return sorted(c.id for c in self.s.list_chats())

    def ids(self, sql: str, *args: object) -> list[Any]:
        return [row[0] for row in self.s.conn.execute(sql, args)]

    def answerable(self, chat: str) -> list[int]:
        ids = self.ids(
            "SELECT id FROM event_log WHERE chat_id = ? "
            "AND kind IN ('user_turn', 'user_turn_edit', 'chat_created') ORDER BY id",
            chat,
        )
        return [i for i in ids if self.s.on_current_branch(chat, i)]

    # --- the moves; each returns the events to append, or None to skip ---

    def bot(self, a: int, b: int, c: int) -> Any:
        if len(self.all_bots()) >= 5:
            return None  # a small cast meets more often
        name = pick(NAMES, a)
        return [ev.BotCreated(self.s.new_bot_id(name), name, f"persona {b}", f"hi {c}")]

    def update_bot(self, a: int, b: int, c: int) -> Any:
        bots = self.live_bots()
        if not bots:
            return None
        return [ev.BotUpdated(pick(bots, a), name=pick([None, "Renamed"], b), persona=f"p{c}")]

    def delete_bot(self, a: int, b: int, c: int) -> Any:
        bots = self.live_bots()
        return [ev.BotDeleted(pick(bots, a))] if len(bots) > 1 and b % 3 == 0 else None

    def you(self, a: int, b: int, c: int) -> Any:
        return [ev.YouUpdated(pick(["Ash", "Rook"], a), f"persona {b}")]

    def place(self, a: int, b: int, c: int) -> Any:
        return [ev.LocationCreated(pick(["Inn", "Docks", "Hill"], a), f"described {b}")]

    def chat(self, a: int, b: int, c: int) -> Any:
        bots = self.live_bots()
        if not bots or len(self.chats()) >= 3:
            return None
        host = pick(bots, a)
        others = [x for x in bots if x != host]
        guest = pick(others, b) if others and c % 2 else None
        return [ev.ChatCreated(self.s.new_chat_id(), f"t{a}", host, guest, pick(PLACES, c))]

    def user(self, a: int, b: int, c: int) -> Any:
        chats = self.chats()
        return [ev.UserTurn(pick(chats, a), f"line {b}", said("x"))] if chats else None

    def edit(self, a: int, b: int, c: int) -> Any:
        chats = self.chats()
        if not chats:
            return None
        chat = pick(chats, a)
        turns = [t.event_id for t in self.s.timeline(chat) if t.kind == "user"]
        return [ev.UserTurnEdit(chat, pick(turns, b), f"edited {c}", said("e"))] if turns else None

    def start(self, a: int, b: int, c: int) -> Any:
        chats = self.chats()
        if not chats:
            return None
        chat = pick(chats, a)
        return [
            ev.AssistantTurnStarted(
                chat,
                pick(self.all_bots(), b),
                pick(self.answerable(chat), c),
                pick([None, "mira"], c // 7),
            )
        ]

    def finish(self, a: int, b: int, c: int) -> Any:
        beats = self.ids("SELECT beat_id FROM open_beats ORDER BY beat_id")
        if not beats:
            return None
        beat = self.s.get_event(pick(beats, a))
        assert beat is not None and isinstance(beat.event, ev.AssistantTurnStarted)
        started = beat.event
        latest = self.s.latest_assistant_turn(started.chat_id)
        supersedes = latest.event_id if latest is not None and b % 3 == 0 else None
        return [
            ev.AssistantTurn(
                started.chat_id,
                started.speaker_id,
                started.user_turn_id,
                beat.id,
                f"reply {c}",
                truncated=b % 2 == 1,
                error=pick([None, "cancelled"], b),
                interjection_of=started.interjection_of,
                supersedes=supersedes,
            )
        ]

    def memory(self, a: int, b: int, c: int) -> Any:
        chats = self.chats()
        if not chats:
            return None
        chat = pick(chats, a)
        scene = self.s.active_scene(chat)
        return [
            ev.MemoryWritten(
                chat,
                pick(self.all_bots(), b),
                pick(["silver coins", "a storm", "the old key", "silver storm"], c),
                scene_id=scene.id if scene is not None and c % 2 else None,
            )
        ]

    def memory_change(self, a: int, b: int, c: int) -> Any:
        rows = list(self.s.conn.execute("SELECT id, chat_id FROM memories ORDER BY id"))
        if not rows:
            return None
        memory_id, chat = pick(rows, a)
        by = pick(PINNERS, c)
        return [
            pick(
                [
                    ev.MemoryScored(chat, memory_id, b % 4),
                    ev.MemoryPinned(chat, memory_id, by),
                    ev.MemoryUnpinned(chat, memory_id, by),
                ],
                b // 4,
            )
        ]

    def edge(self, a: int, b: int, c: int) -> Any:
        entities = ["you", *self.all_bots()]
        source = pick(entities, a)
        targets = [e for e in entities if e != source]
        if not targets:
            return None
        chats = self.chats()
        return [
            ev.EdgeUpdate(
                source,
                pick(targets, b),
                pick([None, *chats], c),
                (b % 61) - 30,
                (c % 41) - 20,
                tuple(FACTS[: a % 4]),
                summary=pick([None, f"summary {c}"], b),
            )
        ]

    def scene(self, a: int, b: int, c: int) -> Any:
        chats = self.chats()
        if not chats:
            return None
        chat = pick(chats, a)
        active = self.s.active_scene(chat)
        if active is None:
            return [ev.SceneOpened(chat, pick(PLACES, b))]
        close = ev.SceneClosed(chat, active.id, "fade out", pick(PLACES, c))
        bots = self.all_bots()
        return [close, ev.SceneSummary(chat, active.id, pick(bots, b), f"summary {c}")]

    def world(self, a: int, b: int, c: int) -> Any:
        chats = self.chats()
        if not chats:
            return None
        chat = pick(chats, a)
        rows = self.s.world_events(chat)
        if not rows or b % 3 == 0:
            artifacts = Artifacts(
                knowledge_facts=(KnowledgeArtifact("you", "mira", "a fact"),),
                acquired_objects=(ObjectArtifact("you", "lamp"),),
            )
            return [ev.WorldEventCreated(chat, f"event {b}", "", artifacts)]
        row = pick(rows, c)
        if row.status == "planned":
            move = pick([ev.WorldEventStarted, ev.WorldEventCancelled], b)
            return [move(chat, row.id)]
        if c % 2:
            return [
                ev.WorldEventCompleted(chat, row.id),
                ev.ObjectAcquired(chat, "you", "lamp", row.id),
            ]
        return [ev.WorldEventCancelled(chat, row.id)]

    def rewind(self, a: int, b: int, c: int) -> Any:
        chats = [chat for chat in self.chats() if not self.s.open_beats(chat)]
        if not chats or c % 2:
            return None
        chat = pick(chats, a)
        targets = [
            i
            for i in self.ids("SELECT id FROM event_log WHERE chat_id = ? ORDER BY id", chat)
            if self.s.on_current_branch(chat, i)
        ]
        self.s.rewind(chat, pick(targets, b))
        return None

    # --- cards, lorebooks, imported chats ---

    def card(self, a: int, b: int, c: int) -> Any:
        bots = self.live_bots()
        if not bots:
            return None
        avatar = put_blob(self.s, f"image {c % 3}".encode(), "image/png") if b % 2 else None
        document = json.dumps({"name": f"card {a}", "description": f"d{b}"})
        return [ev.BotCard(pick(bots, a), pick(["v1", "v2", "v3"], c), document, avatar)]

    def lorebook(self, a: int, b: int, c: int) -> Any:
        taken = len(self.ids("SELECT lorebook_id FROM lorebooks"))
        document = json.dumps({"entries": {}})
        return [ev.LorebookImported(f"lore-{taken + 1}", f"book {a}", "world_info", document, 0)]

    def imported(self, a: int, b: int, c: int) -> Any:
        chats = self.chats()
        if not chats:
            return None
        lines = tuple(json.dumps({"mes": f"m{n}"}) for n in range(b % 3))
        return [ev.ChatImported(pick(chats, a), "st_chat", "{}", lines, (0,) if c % 2 else ())]

    # --- steering: lorebooks attached to chats, the author's note ---

    def attach(self, a: int, b: int, c: int) -> Any:
        chats, books = self.chats(), self.ids("SELECT lorebook_id FROM lorebooks ORDER BY 1")
        if not chats or not books:
            return None
        chat, book = pick(chats, a), pick(books, b)
        if book in self.s.chat_lorebooks(chat):
            return [ev.LorebookDetached(chat, book)]
        return [ev.LorebookAttached(chat, book)]

    def note(self, a: int, b: int, c: int) -> Any:
        chats = self.chats()
        if not chats:
            return None
        return [ev.AuthorNoteSet(pick(chats, a), f"note {b}" if c % 4 else "", c % 101)]

    def fork(self, a: int, b: int, c: int) -> Any:
        chats = [chat for chat in self.chats() if not self.s.open_beats(chat)]
        if not chats:
            return None
        chat = pick(chats, a)
        turns = [t.event_id for t in self.s.timeline(chat) if t.kind == "user"]
        if turns:
            reason: ev.BranchReason = pick(["regenerate", "edit"], c)
            self.s.fork(chat, pick(turns, b), reason)
        return None

    def switch(self, a: int, b: int, c: int) -> Any:
        chats = [chat for chat in self.chats() if not self.s.open_beats(chat)]
        if not chats:
            return None
        chat = pick(chats, a)
        self.s.switch_branch(chat, pick(self.s.branches(chat), b).branch_id)
        return None

    # --- casts and presence ---

    def cast_chat(self, a: int, b: int, c: int) -> Any:
        bots = self.live_bots()
        if not bots or len(self.chats()) >= 3:
            return None
        rng = random.Random(a)
        cast = tuple(rng.sample(bots, 1 + b % min(len(bots), 4)))
        guest = cast[1] if len(cast) > 1 else None
        return [ev.ChatCreated(self.s.new_chat_id(), f"t{a}", cast[0], guest, None, cast)]

    def join(self, a: int, b: int, c: int) -> Any:
        chats = self.chats()
        if not chats:
            return None
        chat = pick(chats, a)
        members = {bot_id for bot_id, _ in self.s.cast_of(chat)}
        free = [bot for bot in self.live_bots() if bot not in members]
        return [ev.CastAdded(chat, pick(free, b))] if free else None

    def drop(self, a: int, b: int, c: int) -> Any:
        chats = self.chats()
        if not chats:
            return None
        chat = pick(chats, a)
        guests = [bot_id for bot_id, _ in self.s.cast_of(chat)[1:]]
        return [ev.CastRemoved(chat, pick(guests, b))] if guests else None

    def presence(self, a: int, b: int, c: int) -> Any:
        chats = self.chats()
        if not chats:
            return None
        chat = pick(chats, a)
        members = self.s.cast_of(chat)
        bot_id, present = pick(members, b)
        if present and len(self.s.present_bots(chat)) == 1:
            return None  # the last one present stays
        return [ev.PresenceChanged(chat, bot_id, not present)]

    def mute(self, a: int, b: int, c: int) -> Any:
        chats = self.chats()
        if not chats:
            return None
        chat = pick(chats, a)
        bot_id, _ = pick(self.s.cast_of(chat), b)
        return [ev.MuteChanged(chat, bot_id, bot_id not in self.s.muted_bots(chat))]

    def witnessed(self, a: int, b: int, c: int) -> Any:
        chats = self.chats()
        if not chats:
            return None
        chat = pick(chats, a)
        present = (*self.s.present_bots(chat)[: 1 + c % 3], "you")
        return [ev.UserTurn(chat, f"seen {b}", said("w"), present)]

    def go_on(self, a: int, b: int, c: int) -> Any:
        chats = self.chats()
        if not chats:
            return None
        chat = pick(chats, a)
        latest = self.s.latest_assistant_turn(chat)
        if latest is None:
            return None
        return [ev.BeatContinued(chat, latest.event_id, f" and {b}", bool(c % 2))]

    # --- several people at one table ---

    def personas(self) -> list[str]:
        return [p.id for p in self.s.list_personas()]

    def persona(self, a: int, b: int, c: int) -> Any:
        if len(self.personas()) >= 4:
            return None
        name = pick(["Bea", "Cal", "Dov"], a)
        return [ev.PersonaCreated(self.s.new_bot_id(name), name, f"persona {b}")]

    def update_persona(self, a: int, b: int, c: int) -> Any:
        others = self.personas()[1:]
        if not others:
            return None
        return [
            ev.PersonaUpdated(pick(others, a), name=pick([None, "Renamed"], b), persona=f"{c}")
        ]

    def seat(self, a: int, b: int, c: int) -> Any:
        chats = self.chats()
        if not chats:
            return None
        chat = pick(chats, a)
        free = [p for p in self.personas() if p not in self.s.people_of(chat)]
        return [ev.SeatTaken(chat, pick(free, b))] if free else None

    def tune(self, a: int, b: int, c: int) -> Any:
        chats = self.chats()
        if not chats:
            return None
        chat = pick(chats, a)
        temperature = None if b % 3 == 0 else (b % 200) / 100
        return [ev.ChatSettingsUpdated(chat, temperature, max_tokens=16 + c % 500)]

    def persona_says(self, a: int, b: int, c: int) -> Any:
        chats = self.chats()
        if not chats:
            return None
        person = pick(self.personas(), c)
        return [ev.UserTurn(pick(chats, a), f"as {person} {b}", said("p"), person_id=person)]


MOVES: list[Callable[[Moves, int, int, int], Any]] = [
    Moves.persona,
    Moves.update_persona,
    Moves.seat,
    Moves.persona_says,
    Moves.cast_chat,
    Moves.tune,
    Moves.join,
    Moves.drop,
    Moves.presence,
    Moves.presence,
    Moves.witnessed,
    Moves.bot,
    Moves.update_bot,
    Moves.delete_bot,
    Moves.you,
    Moves.place,
    Moves.chat,
    Moves.user,
    Moves.user,
    Moves.edit,
    Moves.start,
    Moves.start,
    Moves.finish,
    Moves.finish,
    Moves.memory,
    Moves.memory_change,
    Moves.edge,
    Moves.edge,
    Moves.scene,
    Moves.world,
    Moves.world,
    Moves.rewind,
    Moves.mute,
    Moves.card,
    Moves.lorebook,
    Moves.imported,
    Moves.attach,
    Moves.attach,
    Moves.note,
    Moves.fork,
    Moves.switch,
    Moves.switch,
    Moves.go_on,
]

numbers = st.integers(min_value=0, max_value=10_000)
moves = st.lists(
    st.tuples(st.integers(0, len(MOVES) - 1), numbers, numbers, numbers), min_size=20, max_size=80
)


def play(store: Store, drawn: list[tuple[int, int, int, int]]) -> int:
    """Apply the drawn moves; returns how many events were appended."""
    moves_ = Moves(store)
    # Every story starts with a cast, so that most moves have something to act on.
    store.append(
        ev.BotCreated("mira", "Mira", ""),
        ev.BotCreated("tam", "Tam", ""),
        ev.ChatCreated(store.new_chat_id(), "First", "mira", "tam", "Inn"),
    )
    appended = 3
    for index, a, b, c in drawn:
        events = MOVES[index](moves_, a, b, c)
        if events:
            appended += len(store.append(*events).ids)
    return appended


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,  # ``places`` hands out a fresh place each time
    ],
)
@given(drawn=moves)
def test_incremental_projection_equals_rebuild(
    places: Places, drawn: list[tuple[int, int, int, int]]
) -> None:
    with places.fresh() as where:
        store = open_store(where)
        try:
            play(store, drawn)
            incremental = dump_projections(store)
            store.rebuild()
            assert dump_projections(store) == incremental
            if places.backend == "sqlite":
                assert store.conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        finally:
            store.close()


def test_the_moves_reach_every_event_kind(place: Where) -> None:
    """A long fixed walk covers every kind, so the property above is not vacuous."""
    rng = random.Random(7)
    drawn = [
        (n % len(MOVES), rng.randrange(10_000), rng.randrange(10_000), rng.randrange(10_000))
        for n in range(1200)
    ]
    store = open_store(place)
    try:
        play(store, drawn)
        kinds = {row[0] for row in store.conn.execute("SELECT DISTINCT kind FROM event_log")}
        assert kinds == set(ev.EVENT_KINDS)
        ((superseded, branched),) = store.conn.execute(
            "SELECT count(superseded_by), count(DISTINCT branch_id) FROM event_log"
        )
        assert superseded and branched > 3, "some turns superseded, some on other branches"
        incremental = dump_projections(store)
        store.rebuild()
        assert dump_projections(store) == incremental
    finally:
        store.close()
