"""Payloads of the append-only event log, one frozen class per ``kind``.

Each event's id is its position in the log (assigned by the store). Events
that create something take that id as the new thing's id: a
``memory_written`` event's id is the memory's id, a ``scene_opened`` event's
id is the scene's id, a ``world_event_created`` event's id is the world
event's id, an ``assistant_turn_started`` event's id is the beat's id.
"""

from __future__ import annotations

from typing import Literal

from attrs import field, frozen

from . import _payloads as shared
from ._limits import (
    MAX_DESCRIPTION,
    MAX_FACT,
    MAX_FACTS,
    MAX_ID,
    MAX_LOCATION,
    MAX_NAME,
    MAX_PROSE,
    MAX_SIGNIFICANCE,
    MAX_TITLE,
    MIN_SIGNIFICANCE,
)
from ._payloads import an_id as _id
from ._shapes import Segments
from ._validators import at_most, in_range, limits_apply, not_blank, optional_at_most

PinnedBy = Literal["auto", "manual"]

Present = tuple[str, ...] | None
"""The entity ids present when an event happened (you included); ``None`` in older logs,
where everyone of the chat's cast at the time counts as present."""


def _facts(_inst: object, attribute: object, value: tuple[str, ...]) -> None:
    if not limits_apply():
        return
    if len(value) > MAX_FACTS:
        raise ValueError(f"at most {MAX_FACTS} knowledge facts are allowed")
    for fact in value:
        if not isinstance(fact, str) or len(fact) > MAX_FACT:
            raise ValueError(f"a knowledge fact is a string of at most {MAX_FACT} characters")


# --- the world outside any one chat ---


@frozen
class YouUpdated(shared.YouProfile):
    """The user's name or persona changed."""


@frozen(init=False)
class BotCreated(shared.BotProfile):
    """A bot was created, with the id the server gave it."""

    bot_id: str = field(kw_only=True, validator=[not_blank, _id])

    def __init__(self, bot_id: str, name: str, persona: str, greeting: str = "") -> None:
        # The id comes first, as it always did, though the profile's fields are declared first.
        self.__attrs_init__(name, persona, greeting, bot_id=bot_id)


CardVersion = Literal["v1", "v2", "v3"]
"""The version a character card was written in."""

LorebookFormat = Literal["world_info", "lorebook_v3"]
"""The file a lorebook came in: SillyTavern world info, or a V3 ``lorebook_v3``."""


@frozen
class BotCard(shared.BotRef):
    """A bot's character card: the document it came in, whole, and its avatar image.

    ``document`` is the card's JSON exactly as it was read, unknown keys and
    all; ``avatar`` the sha256 (hex) of the image, kept beside the log and
    written with this event, or None for a card without one. A later
    ``bot_card`` of the same bot replaces the card.
    """

    spec: CardVersion
    document: str
    avatar: str | None = None


@frozen
class LorebookImported:
    """A lorebook was imported; ``document`` is its file's JSON exactly as it was read."""

    lorebook_id: str = field(validator=[not_blank, _id])
    name: str = field(validator=at_most(MAX_TITLE))
    format: LorebookFormat
    document: str
    entries: int


@frozen(init=False)
class PersonaCreated(shared.YouProfile):
    """A persona (a person who can take a seat) was created, with the id the server gave it."""

    persona_id: str = field(kw_only=True, validator=[not_blank, _id])

    def __init__(self, persona_id: str, name: str, persona: str) -> None:
        self.__attrs_init__(name, persona, persona_id=persona_id)


@frozen
class PersonaUpdated(shared.PersonaChanges):
    """Some of a persona's fields changed; ``None`` means unchanged (``you`` has its own)."""


@frozen
class BotUpdated(shared.BotChanges):
    """Some of a bot's fields changed; ``None`` means unchanged."""


@frozen
class BotDeleted(shared.BotRef):
    """A bot was deleted; every chat that had it as guest goes on one to one."""


@frozen
class LocationCreated:
    """A named place scenes can happen in."""

    name: str = field(validator=[not_blank, at_most(MAX_LOCATION)])
    description: str = field(default="", validator=at_most(MAX_DESCRIPTION))


# --- one chat ---


@frozen(init=False)
class ChatCreated(shared.ChatCast):
    """A chat was started, with the id and the title the server gave it."""

    chat_id: str = field(kw_only=True, validator=[not_blank, _id])
    title: str = field(kw_only=True, validator=at_most(MAX_TITLE))

    def __init__(
        self,
        chat_id: str,
        title: str,
        host_bot_id: str,
        guest_bot_id: str | None = None,
        location: str | None = None,
        cast: tuple[str, ...] = (),
        continue_from: str | None = None,
    ) -> None:
        # The id and title come first, as they always did.
        self.__attrs_init__(
            host_bot_id,
            guest_bot_id,
            location,
            chat_id=chat_id,
            title=title,
            cast=cast,
            continue_from=continue_from,
        )

    cast: tuple[str, ...] = field(default=(), kw_only=True)
    """Every bot of the cast, the host first (the host and guest are its first two);
    empty in older logs, where the cast is the host and the guest."""

    continue_from: str | None = field(
        default=None, kw_only=True, validator=optional_at_most(MAX_ID)
    )
    """The chat this one carries on from: the memories and edges of the bots in both casts
    follow as this chat's own ``memory_written`` and ``edge_update`` events. None for a
    chat that starts fresh (and in older logs)."""

    @property
    def members(self) -> tuple[str, ...]:
        """The chat's cast as created: ``cast``, or the host and the guest."""
        if self.cast:
            return self.cast
        return (
            (self.host_bot_id,)
            if self.guest_bot_id is None
            else (
                self.host_bot_id,
                self.guest_bot_id,
            )
        )


@frozen
class ChatImported(shared.ChatRef):
    """A chat was imported from a file of another front end (``st_chat``: SillyTavern).

    ``header`` and ``lines`` are the file's header and message lines exactly
    as read, so nothing the timeline cannot hold (swipes, dates, ``extra``)
    is lost. The import appends this event right after the chat's creation,
    then one turn event per line in order, but for the lines in ``skipped``
    (system lines, blank messages), which became no turn.
    """

    format: Literal["st_chat"]
    header: str
    lines: tuple[str, ...]
    skipped: tuple[int, ...] = ()


@frozen
class CastAdded(shared.CastMember):
    """A bot joined the chat's cast, and entered its scene."""


@frozen
class ChatSettingsUpdated(shared.ChatRef):
    """Some of a chat's sampler settings changed; ``None``: that setting stays as it was."""

    temperature: float | None = None
    top_p: float | None = None
    min_p: float | None = None
    repeat_penalty: float | None = None
    max_tokens: int | None = None


@frozen
class CastRemoved(shared.CastMember):
    """A bot left the chat's cast (and its scene)."""


@frozen
class PresenceChanged(shared.CastMember):
    """A cast member entered (``present``) or left the scene."""

    present: bool


@frozen
class MuteChanged(shared.CastMember):
    """A cast member was muted (``muted``: it answers only when forced) or unmuted."""

    muted: bool


@frozen
class SeatTaken(shared.Seat):
    """A persona sat down at the chat's table for the first time: it is present from now on."""


@frozen
class ChatRewound(shared.ChatRef):
    """The chat was rewound: a branch starts after ``to_event_id`` and becomes current.

    Its id is the new branch's id. What came after ``to_event_id`` stays on the
    branch that was current, which can be switched back to.
    """

    to_event_id: int


BranchReason = Literal["regenerate", "edit"]


@frozen
class BranchForked(shared.ChatRef):
    """A branch starts after ``at_event_id`` of the current branch and becomes current.

    Its id is the new branch's id: a beat regenerated, or a turn of the
    person edited, forks here and the turn runs again on the new branch.
    """

    at_event_id: int
    reason: BranchReason


@frozen
class BranchSwitched(shared.ChatRef):
    """The chat's current branch became ``branch_id``: the world follows its path."""

    branch_id: int


@frozen
class UserTurn(shared.Prose):
    """The user wrote prose."""

    segments: Segments
    present: Present = None
    person_id: str | None = field(default=None, validator=optional_at_most(MAX_ID))
    """The persona who wrote it; ``None``: ``you`` (older logs, a connection with no seat)."""


@frozen
class UserTurnEdit(shared.ChatRef):
    """The user edited the prose of turn ``supersedes``, which leaves the timeline."""

    supersedes: int
    prose: str = field(validator=[not_blank, at_most(MAX_PROSE)])
    segments: Segments
    present: Present = None
    person_id: str | None = field(default=None, validator=optional_at_most(MAX_ID))
    """The persona of the edited turn; ``None``: ``you``."""


@frozen
class AssistantTurnStarted(shared.BeatOf):
    """A beat started streaming; its id is the beat's id."""

    interjection_of: str | None = None
    present: Present = None


@frozen
class AssistantTurn(shared.BeatOf):
    """A beat ended; ``text`` is what was received, ``truncated`` if it stopped early."""

    started_id: int | None
    text: str
    truncated: bool = False
    error: str | None = None
    interjection_of: str | None = None
    supersedes: int | None = None
    present: Present = None
    """Left out, the beat's witnesses are those present when it is written."""


@frozen
class MemoryRef(shared.ChatRef):
    """One memory of the chat, by id: how every event about a written memory starts."""

    memory_id: int


@frozen
class BeatContinued(shared.ChatRef):
    """The beat ``event_id`` (an ``assistant_turn``) went on: ``text`` is appended to it.

    ``truncated`` and ``error`` tell how the continuation ended, and are the
    beat's from then on.
    """

    event_id: int
    text: str
    truncated: bool = False
    error: str | None = None


@frozen
class MemoryWritten(shared.CastMember):
    """A bot remembers something from its own point of view; the id is the memory's."""

    text: str
    scene_id: int | None = None
    source_event_id: int | None = None
    present: Present = None


@frozen
class MemoryScored(MemoryRef):
    """The significance pass scored a memory."""

    significance: int = field(validator=in_range(MIN_SIGNIFICANCE, MAX_SIGNIFICANCE))


@frozen
class MemoryPin(MemoryRef):
    """A memory's pin changed, by hand or automatically."""

    by: PinnedBy


@frozen
class MemoryPinned(MemoryPin):
    """A memory was pinned, by hand or automatically (significance 3)."""


@frozen
class MemoryUnpinned(MemoryPin):
    """A memory was unpinned, by hand or by the auto-pin cap's eviction."""


@frozen
class EdgeUpdate:
    """The directed edge ``source_id`` → ``target_id`` changed by these deltas."""

    source_id: str = field(validator=_id)
    target_id: str = field(validator=_id)
    chat_id: str | None = None
    affinity_delta: int = 0
    trust_delta: int = 0
    knowledge_facts: tuple[str, ...] = field(default=(), validator=_facts)
    summary: str | None = field(default=None, validator=optional_at_most(MAX_DESCRIPTION))


@frozen
class SceneOpened(shared.ChatRef):
    """A scene opened at ``location``; the id is the scene's."""

    location: str | None = field(default=None, validator=optional_at_most(MAX_LOCATION))


@frozen
class SceneClosed(shared.ChatRef):
    """The scene ended, for ``reason`` (a phrase, a location change, ...)."""

    scene_id: int
    reason: str = ""
    next_location: str | None = field(default=None, validator=optional_at_most(MAX_LOCATION))


@frozen
class SceneSummary(shared.ChatRef):
    """How one witness (``bot_id``) sums up a closed scene."""

    scene_id: int
    bot_id: str = field(validator=_id)
    text: str = field(validator=at_most(MAX_DESCRIPTION))


@frozen
class WorldEventCreated(shared.WorldEventPlan):
    """A world event was planned; the id is the world event's."""

    present: Present = None


@frozen
class WorldEventMove(shared.ChatRef):
    """A world event of the chat changed status (see :data:`protocol.WORLD_EVENT_MOVES`)."""

    world_event_id: int
    present: Present = None


@frozen
class WorldEventStarted(WorldEventMove):
    """A planned world event became active."""


@frozen
class WorldEventCompleted(WorldEventMove):
    """A world event completed; its artifacts are promoted by the events that follow."""


@frozen
class WorldEventCancelled(WorldEventMove):
    """A world event was called off."""


@frozen
class ObjectAcquired(shared.ChatRef):
    """``holder_id`` now has the object ``name``."""

    holder_id: str = field(validator=_id)
    name: str = field(validator=[not_blank, at_most(MAX_NAME)])
    world_event_id: int | None = None


@frozen
class LorebookAttached(shared.LorebookRef):
    """A lorebook was attached to the chat: its lore may wake in every character's prompt."""


@frozen
class LorebookDetached(shared.LorebookRef):
    """A lorebook was taken off the chat."""


@frozen
class AuthorNoteSet(shared.AuthorNoteText):
    """The chat's author's note changed; an empty text removes it."""


Event = (
    YouUpdated
    | BotCreated
    | BotUpdated
    | BotDeleted
    | LocationCreated
    | ChatCreated
    | ChatRewound
    | BranchForked
    | BranchSwitched
    | UserTurn
    | UserTurnEdit
    | AssistantTurnStarted
    | AssistantTurn
    | BeatContinued
    | MemoryWritten
    | MemoryScored
    | MemoryPinned
    | MemoryUnpinned
    | EdgeUpdate
    | SceneOpened
    | SceneClosed
    | SceneSummary
    | WorldEventCreated
    | WorldEventStarted
    | WorldEventCompleted
    | WorldEventCancelled
    | ObjectAcquired
    | CastAdded
    | CastRemoved
    | PresenceChanged
    | MuteChanged
    | BotCard
    | LorebookImported
    | ChatImported
    | LorebookAttached
    | LorebookDetached
    | AuthorNoteSet
    | PersonaCreated
    | PersonaUpdated
    | SeatTaken
    | ChatSettingsUpdated
)

EVENT_KINDS: dict[str, type[Event]] = {
    "you_updated": YouUpdated,
    "bot_created": BotCreated,
    "bot_updated": BotUpdated,
    "bot_deleted": BotDeleted,
    "location_created": LocationCreated,
    "chat_created": ChatCreated,
    "chat_rewound": ChatRewound,
    "branch_forked": BranchForked,
    "branch_switched": BranchSwitched,
    "user_turn": UserTurn,
    "user_turn_edit": UserTurnEdit,
    "assistant_turn_started": AssistantTurnStarted,
    "assistant_turn": AssistantTurn,
    "beat_continued": BeatContinued,
    "memory_written": MemoryWritten,
    "memory_scored": MemoryScored,
    "memory_pinned": MemoryPinned,
    "memory_unpinned": MemoryUnpinned,
    "edge_update": EdgeUpdate,
    "scene_opened": SceneOpened,
    "scene_closed": SceneClosed,
    "scene_summary": SceneSummary,
    "world_event_created": WorldEventCreated,
    "world_event_started": WorldEventStarted,
    "world_event_completed": WorldEventCompleted,
    "world_event_cancelled": WorldEventCancelled,
    "object_acquired": ObjectAcquired,
    "cast_added": CastAdded,
    "cast_removed": CastRemoved,
    "presence_changed": PresenceChanged,
    "mute_changed": MuteChanged,
    "bot_card": BotCard,
    "lorebook_imported": LorebookImported,
    "chat_imported": ChatImported,
    "lorebook_attached": LorebookAttached,
    "lorebook_detached": LorebookDetached,
    "author_note_set": AuthorNoteSet,
    "persona_created": PersonaCreated,
    "persona_updated": PersonaUpdated,
    "seat_taken": SeatTaken,
    "chat_settings_updated": ChatSettingsUpdated,
}
"""The log ``kind`` of every event payload."""

KIND_OF: dict[type[Event], str] = {cls: kind for kind, cls in EVENT_KINDS.items()}


def kind_of(event: Event) -> str:
    """The log ``kind`` of an event payload."""
    return KIND_OF[type(event)]


def chat_of(event: Event) -> str | None:
    """The chat an event belongs to, or ``None`` for world-wide events."""
    return getattr(event, "chat_id", None)


__all__ = [
    *(cls.__name__ for cls in EVENT_KINDS.values()),
    "EVENT_KINDS",
    "CardVersion",
    "Event",
    "LorebookFormat",
    "PinnedBy",
    "Present",
    "chat_of",
    "kind_of",
]
