"""Messages the server sends, one class per ``type``.

Direct answers carry ``reply_to`` (added by the codec). Chat messages carry
``chat_id`` and, except ``token`` and ``chat_state``, a ``seq`` that the chat
stamps when it publishes them (built with ``seq=0``, then ``attrs.evolve``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from attrs import frozen

from ._shapes import (
    Bot,
    Chat,
    Edge,
    Entity,
    InFlight,
    Memory,
    Scene,
    Segment,
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
]

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
class Bots:
    """Answer to ``list_bots``."""

    bots: tuple[Bot, ...]


@frozen
class BotReply:
    """Answer to ``create_bot`` and ``update_bot``."""

    bot: Bot


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
class Accepted:
    """A turn was accepted; its beats follow on the chat."""

    chat_id: str
    user_turn_id: int


@frozen
class RewindPreviewReply:
    """What a rewind would remove, counted by event kind."""

    chat_id: str
    event_id: int
    total_events: int
    by_kind: Mapping[str, int]


@frozen
class Rewound:
    """A rewind happened; a fresh ``chat_state`` follows to every subscriber."""

    chat_id: str
    event_id: int


@frozen
class Memories:
    """Answer to ``list_memories``."""

    memories: tuple[Memory, ...]


@frozen
class MemoryReply:
    """Answer to ``pin_memory``."""

    memory: Memory


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
class ChatState:
    """Everything a client needs to draw a chat; ``seq`` is the last message it reflects."""

    chat_id: str
    chat: Chat
    timeline: tuple[Turn, ...]
    edges: tuple[Edge, ...]
    scene: Scene | None
    in_flight: InFlight | None
    seq: int = 0
    world_events: tuple[WorldEventState, ...] = ()
    """Every world event of the chat and its status (an addition to the protocol)."""


@frozen
class UserTurn:
    """The user's turn was written."""

    chat_id: str
    event_id: int
    prose: str
    segments: tuple[Segment, ...]
    seq: int = 0


@frozen
class BeatStarted:
    """A character starts speaking."""

    chat_id: str
    beat_id: int
    user_turn_id: int
    speaker_id: str
    interjection: bool
    seq: int = 0


@frozen
class Token:
    """Streamed text of a beat; ephemeral, no ``seq``."""

    chat_id: str
    beat_id: int
    speaker_id: str
    offset: int
    text: str


@frozen
class BeatComplete:
    """A beat ended; ``text`` is exactly what was committed."""

    chat_id: str
    beat_id: int
    event_id: int
    speaker_id: str
    text: str
    truncated: bool
    interjection_of: str | None
    error: str | None
    seq: int = 0


@frozen
class EdgeUpdate:
    """A relationship changed."""

    chat_id: str
    source_id: str
    target_id: str
    affinity: int
    trust: int
    affinity_delta: int
    trust_delta: int
    knowledge_facts: tuple[str, ...]
    seq: int = 0


@frozen
class MemoryNote:
    """A memory was written, scored or pinned (``type`` is ``memory``)."""

    chat_id: str
    memory: Memory
    seq: int = 0


@frozen
class WorldEvent:
    """A world event was planned or changed status."""

    chat_id: str
    event_id: int
    title: str
    status: WorldEventStatus
    seq: int = 0


@frozen
class SceneClosed:
    """The scene closed, with a summary per witness."""

    chat_id: str
    scene_id: int
    summaries: Mapping[str, str]
    seq: int = 0


@frozen
class TurnSettled:
    """Every pass of the turn is done; the chat takes a new turn."""

    chat_id: str
    user_turn_id: int
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
    | Rewound
    | Memories
    | MemoryReply
    | Statistics
    | Error
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
    Rewound: "rewound",
    Memories: "memories",
    MemoryReply: "memory",
    Statistics: "statistics",
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
}
"""The wire ``type`` of every server message."""
