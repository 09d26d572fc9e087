"""Messages the server sends, one class per ``type``.

Direct answers carry ``reply_to`` (added by the codec). Chat messages carry
``chat_id`` and, except ``token`` and ``chat_state``, a ``seq`` that the chat
stamps when it publishes them (built with ``seq=0``, then ``attrs.evolve``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from attrs import field, frozen

from . import _payloads as shared
from . import _shapes as shapes
from ._sampler import ChatSettings
from ._shapes import (
    YOU_ID,
    Bot,
    Chat,
    Edge,
    Entity,
    LorebookInfo,
    Memory,
    QueuedTurn,
    Scene,
    Segments,
    Turn,
    WorldEventState,
)
from ._shapes import WorldEventStatus as WorldEventStatus

ErrorCode = Literal[
    "bad_json",
    "bad_message",
    "unknown_type",
    "too_large",
    "not_found",
    "busy",
    "invalid",
    "rate_limited",
    "llm_error",
    "storage_full",
    "internal",
    "unavailable",
]


@frozen
class OnChat:
    """A message about one chat: the chat's id comes first."""

    chat_id: str


@frozen
class OnEvent(OnChat):
    """A message about one event of a chat's log: the chat's id, then the event's."""

    event_id: int


# --- direct answers ---


@frozen
class Welcome:
    """Answer to ``hello``."""

    protocol: int
    server: str
    you: Entity


@frozen
class You:
    """Answer to ``set_you``."""

    you: Entity


@frozen
class Personas:
    """Answer to ``list_personas``: ``you`` first, then the others, oldest first."""

    personas: tuple[Entity, ...]


@frozen
class PersonaReply:
    """Answer to ``create_persona``, ``update_persona`` and ``take_seat``."""

    persona: Entity


@frozen
class Bots:
    """Answer to ``list_bots``."""

    bots: tuple[Bot, ...]


@frozen
class BotReply:
    """Answer to ``create_bot`` and ``update_bot``."""

    bot: Bot


@frozen
class LorebookReply:
    """An imported lorebook, sent to every client when one is imported (an addition)."""

    lorebook: LorebookInfo


@frozen
class Lorebooks:
    """Answer to ``list_lorebooks`` (an addition to the protocol)."""

    lorebooks: tuple[LorebookInfo, ...]


@frozen
class Ok:
    """A command that has nothing more to say worked."""


@frozen
class Chats:
    """Answer to ``list_chats``."""

    chats: tuple[Chat, ...]


@frozen
class ChatReply:
    """Answer to ``create_chat``."""

    chat: Chat


@frozen
class OnTurn(OnChat):
    """A message about one user turn: the chat's id, then the turn's."""

    user_turn_id: int


@frozen
class Queued(OnChat):
    """A ``send_turn`` with ``queue`` waits behind the turn in flight (``position`` 1 is next)."""

    queue_id: int
    position: int


@frozen
class Accepted(OnTurn):
    """A turn was accepted; its beats follow on the chat."""


@frozen
class RewindPreviewReply(OnEvent):
    """What a rewind would remove, counted by event kind."""

    total_events: int
    by_kind: Mapping[str, int]
    summary: str = ""
    """The same in plain words, e.g. "3 turns, 2 memories and 1 relationship change move
    to a branch you can return to" (an addition)."""


@frozen
class BranchInfo:
    """One branch of a chat (``list_branches``)."""

    branch_id: int
    parent_id: int | None
    fork_event_id: int | None
    """The last event it shares with its parent; null for the chat's first branch."""
    length: int
    """How many turns (the person's and the characters') are on its path."""
    tip_event_id: int
    last_line: str
    current: bool


@frozen
class Branches(OnChat):
    """Answer to ``list_branches``: the chat's branches, the first one first."""

    branches: tuple[BranchInfo, ...]


@frozen
class Rewound(OnEvent):
    """A rewind happened; a fresh ``chat_state`` follows to every subscriber."""


@frozen
class Memories:
    """Answer to ``list_memories``."""

    memories: tuple[Memory, ...]


@frozen
class MemoryReply:
    """Answer to ``pin_memory``."""

    memory: Memory


@frozen
class ChatSettingsReply(OnChat):
    """Answer to ``update_chat_settings``: the chat's settings now (an addition)."""

    settings: ChatSettings


@frozen
class Statistics:
    """Answer to ``statistics``: live figures of actors, topics and backends."""

    statistics: Mapping[str, object]


@frozen
class Error:
    """Something went wrong; ``message`` is for a person.

    An error that concerns a chat rather than a command (the model failed
    mid-turn: ``llm_error``) is sent to the chat's watchers with its
    ``chat_id`` (an addition) and ``reply_to`` null.
    """

    code: ErrorCode
    message: str
    chat_id: str | None = None


# --- messages on an open chat ---


@frozen
class OnBeat(OnChat):
    """A message of one beat: the chat's id, then the beat's."""

    beat_id: int


@frozen
class ChatState(OnChat):
    """Everything a client needs to draw a chat; ``seq`` is the last message it reflects."""

    chat: Chat
    timeline: tuple[Turn, ...]
    edges: tuple[Edge, ...]
    scene: Scene | None
    in_flight: shapes.InFlight | None
    seq: int = 0
    world_events: tuple[WorldEventState, ...] = ()
    """Every world event of the chat and its status (an addition to the protocol)."""
    has_older: bool = False
    """``timeline`` holds only the chat's latest turns; ``load_older`` gets the ones before
    (an addition to the protocol, left out when false)."""
    lorebooks: tuple[str, ...] = ()
    """The ids of the lorebooks attached to the chat, in the order attached (an addition)."""
    author_note: shapes.AuthorNote | None = None
    """The chat's author's note, if it has one (an addition to the protocol)."""
    queue: tuple[QueuedTurn, ...] = ()
    """The turns waiting behind the one in flight, next first (an addition)."""
    settings: ChatSettings = field(factory=ChatSettings)
    """The chat's sampler settings (an addition; ``null`` ones are the backend's default)."""


@frozen
class UserTurn(OnEvent):
    """The user's turn was written."""

    prose: str
    segments: Segments
    seq: int = 0
    speaker_id: str = YOU_ID
    """The persona who wrote it (an addition; ``you`` when left out)."""


@frozen
class BeatStarted(OnBeat):
    """A character starts speaking."""

    user_turn_id: int
    speaker_id: str
    interjection: bool
    """True when a silent witness speaks up after the addressee's beat."""
    seq: int = 0
    continues: int | None = None
    """The ``event_id`` of the beat this one goes on (``continue``, an addition): the
    tokens that follow append to that beat, ``beat_id`` being its own."""
    offset: int = 0
    """Where the tokens start: the length of the text the beat already had (an addition)."""


@frozen
class Token(OnBeat):
    """Streamed text of a beat; ephemeral, no ``seq``."""

    speaker_id: str
    offset: int
    text: str


@frozen
class BeatComplete(OnBeat):
    """A beat ended; ``text`` is exactly what was committed."""

    event_id: int
    speaker_id: str
    text: str
    truncated: bool
    interjection_of: str | None
    error: str | None
    seq: int = 0


@frozen
class MemoryNote(OnChat):
    """A memory was written, scored or pinned (``type`` is ``memory``)."""

    memory: Memory
    seq: int = 0


@frozen
class WorldEvent(OnEvent):
    """A world event was planned or changed status."""

    title: str
    status: WorldEventStatus
    seq: int = 0


@frozen
class EdgeUpdate(OnChat):
    """A relationship changed."""

    source_id: str
    target_id: str
    affinity: int
    trust: int
    """The edge's values after the change, within 0..100."""
    affinity_delta: int
    trust_delta: int
    """The change the event asked for (the values above are clamped)."""
    knowledge_facts: tuple[str, ...]
    """What the source learned of the target this turn, if anything."""
    seq: int = 0


@frozen
class SceneClosed(OnChat):
    """The scene closed, with a summary per witness."""

    scene_id: int
    summaries: Mapping[str, str]
    seq: int = 0


@frozen
class Presence(shared.CastMember):
    """A cast member entered (``present``) or left the scene (an addition to the protocol)."""

    present: bool
    seq: int = 0


@frozen
class ChatNote(OnChat):
    """The chat's cast, presence or muting changed: the chat as it is now, to every watcher
    (``type`` ``chat_note``; an addition to the protocol)."""

    chat: Chat
    seq: int = 0


@frozen
class SeatTaken(OnChat):
    """A persona sat down at the chat's table for the first time (an addition)."""

    persona: Entity
    seq: int = 0


@frozen
class ChatLorebooks(OnChat):
    """A lorebook was attached or detached: the chat's books now (an addition)."""

    lorebooks: tuple[str, ...]
    seq: int = 0


@frozen
class OlderTurns(OnChat):
    """Answer to ``load_older``: visible turns before ``before_event_id``, oldest first
    (an addition to the protocol)."""

    before_event_id: int
    turns: tuple[Turn, ...]
    has_older: bool
    """Still older turns are left: ask again before the first of ``turns``."""


@frozen
class AuthorNoteChanged(OnChat):
    """The chat's author's note changed; an empty ``text`` means none (an addition)."""

    text: str
    depth: int
    seq: int = 0


@frozen
class TurnQueued(OnChat):
    """The chat's queue changed: a turn joined it, left it, or started (an addition).

    ``queue`` is the whole queue after the change, next first.
    """

    queue: tuple[QueuedTurn, ...]
    seq: int = 0


@frozen
class TurnSettled(OnTurn):
    """Every pass of the turn is done; the chat takes a new turn."""

    seq: int = 0


DirectAnswer = (
    Welcome
    | You
    | Bots
    | BotReply
    | Ok
    | Chats
    | ChatReply
    | Accepted
    | RewindPreviewReply
    | Branches
    | Rewound
    | Memories
    | MemoryReply
    | Statistics
    | ChatSettingsReply
    | Error
    | OlderTurns
    | LorebookReply
    | Lorebooks
    | Personas
    | PersonaReply
    | Queued
)
ChatMessage = (
    ChatState
    | UserTurn
    | BeatStarted
    | Token
    | BeatComplete
    | EdgeUpdate
    | MemoryNote
    | WorldEvent
    | SceneClosed
    | TurnSettled
    | Presence
    | ChatNote
    | ChatLorebooks
    | AuthorNoteChanged
    | SeatTaken
    | TurnQueued
)
"""Messages that belong to a chat; all but Token and ChatState are numbered by ``seq``."""
ServerMessage = DirectAnswer | ChatMessage

SERVER_TYPES: dict[type[ServerMessage], str] = {
    Welcome: "welcome",
    You: "you",
    Bots: "bots",
    BotReply: "bot",
    Ok: "ok",
    Chats: "chats",
    ChatReply: "chat",
    Accepted: "accepted",
    RewindPreviewReply: "rewind_preview",
    Branches: "branches",
    Rewound: "rewound",
    Memories: "memories",
    MemoryReply: "memory",
    Statistics: "statistics",
    ChatSettingsReply: "chat_settings",
    Error: "error",
    ChatState: "chat_state",
    UserTurn: "user_turn",
    BeatStarted: "beat_started",
    Token: "token",
    BeatComplete: "beat_complete",
    EdgeUpdate: "edge_update",
    MemoryNote: "memory",
    WorldEvent: "world_event",
    SceneClosed: "scene_closed",
    TurnSettled: "turn_settled",
    Presence: "presence",
    ChatNote: "chat_note",
    OlderTurns: "older_turns",
    LorebookReply: "lorebook",
    Lorebooks: "lorebooks",
    ChatLorebooks: "chat_lorebooks",
    AuthorNoteChanged: "author_note",
    Personas: "personas",
    PersonaReply: "persona",
    Queued: "queued",
    SeatTaken: "seat_taken",
    TurnQueued: "turn_queued",
}
"""The wire ``type`` the server sends for every message.

``memory`` is sent for two shapes, the answer to ``pin_memory`` and the
chat message, because clients of the first release match on it;
:data:`SERVER_NAMES` gives the chat message its own name too. Messages added
since have one name each: the chat's own news of itself is ``chat_note``,
never ``chat`` (the answer to ``create_chat`` and the cast commands).
"""

SERVER_NAMES: dict[str, type[ServerMessage]] = {
    **{name: cls for cls, name in SERVER_TYPES.items() if cls is not MemoryNote},
    "memory_note": MemoryNote,
}
"""One meaning per name: every server message's own ``type`` (``memory_note`` is
the chat's memory message)."""
