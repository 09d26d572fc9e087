"""The shapes the wire carries inside messages: entities, bots, chats, turns, edges..."""

from __future__ import annotations

from typing import Literal

from attrs import field, frozen

from ._limits import MAX_ARTIFACTS, MAX_EDGE_DELTA, MAX_FACT, MAX_ID, MAX_NAME
from ._validators import FieldTooLarge, at_most, in_range, limits_apply, not_blank

_delta = in_range(-MAX_EDGE_DELTA, MAX_EDGE_DELTA)

YOU_ID = "you"
"""The entity id of the person playing: always ``you``."""

SegmentKind = Literal["dialogue", "action", "narration", "ooc"]
TurnKind = Literal["user", "assistant"]
WorldEventStatus = Literal["planned", "active", "completed", "cancelled"]


@frozen
class Segment:
    """One piece of the user's prose: dialogue, action, narration, or out-of-character."""

    kind: SegmentKind
    text: str


Segments = tuple[Segment, ...]
"""A turn's prose split into dialogue, action, narration and OOC, in order."""


@frozen
class Entity:
    """Someone who can be in a scene: the user (id ``you``) or a bot."""

    id: str
    name: str
    persona: str


@frozen
class Bot:
    """A character played by the model."""

    id: str
    name: str
    persona: str
    greeting: str
    card: bool = False
    """The bot was made from a character card, which it keeps (an addition to the protocol)."""
    avatar_url: str | None = None
    """Where its avatar image is served (``/api/bots/{id}/avatar``), or None without one
    (an addition to the protocol)."""


@frozen
class LoreProblem:
    """Something in an imported lorebook that can never work (an invalid regular expression)."""

    entry: str
    problem: str


@frozen
class LorebookInfo:
    """An imported lorebook as the wire lists it (an addition to the protocol)."""

    lorebook_id: str
    name: str
    format: str
    entries: int
    problems: tuple[LoreProblem, ...] = ()


@frozen
class Chat:
    """One ongoing story between the user, a host bot and optionally a guest bot."""

    id: str
    title: str
    host_bot_id: str
    guest_bot_id: str | None
    location: str | None
    created_at: str
    cast: tuple[str, ...] = ()
    """Every bot of the cast, the host first (an addition to the protocol)."""
    present: tuple[str, ...] = ()
    """The cast members in the scene now, in cast order (an addition to the protocol)."""
    muted: tuple[str, ...] | None = None
    """The cast members who answer only when ``reply_as`` names them, in cast order (an
    addition to the protocol). This server always sends it, ``[]`` when nobody is muted, so
    a client can tell it knows muting; ``None`` (left out) is a frame of a server before."""
    people: tuple[str, ...] = ()
    """The personas at the chat's table, in the order they sat or first spoke (an addition;
    empty until someone took a seat or spoke: then ``you`` alone plays)."""


@frozen
class Turn:
    """A visible turn of a chat's timeline."""

    event_id: int
    kind: TurnKind
    speaker_id: str
    text: str
    truncated: bool
    interjection_of: str | None
    user_turn_id: int
    alternatives: int = 1
    """How many alternatives the beat has, itself included (an addition; 1 is left out)."""
    alternative: int = 0
    """Which of them this one is, from 1, oldest first (an addition; left out, as 0, for a
    beat with no other alternative)."""
    alternative_ids: tuple[int, ...] = ()
    """The event ids of the alternatives, oldest first: what ``select_alternative`` takes
    (an addition; left out, empty, for a beat with no other alternative)."""


@frozen
class Edge:
    """How ``source_id`` feels about ``target_id`` (directed)."""

    source_id: str
    target_id: str
    affinity: int
    trust: int
    summary: str
    knowledge_facts: tuple[str, ...]


@frozen
class Scene:
    """The scene a chat is in: a stretch of story at one location."""

    id: int
    location: str | None
    started_at: str


@frozen
class Memory:
    """Something a bot remembers, from its own point of view."""

    id: int
    bot_id: str
    chat_id: str
    text: str
    significance: int
    pinned: bool


@frozen
class InFlight:
    """The beat being streamed right now, for a client that joins mid-beat."""

    beat_id: int
    speaker_id: str
    text: str


@frozen
class AuthorNote:
    """A chat's author's note: ``text`` goes ``depth`` messages from the end of every prompt."""

    text: str
    depth: int


@frozen
class QueuedTurn:
    """A turn waiting in a chat's queue for the one in flight to settle (an addition)."""

    queue_id: int
    persona_id: str
    prose: str
    reply_as: str | None = None


@frozen
class WorldEventState:
    """A world event as ``chat_state`` lists it (an addition to the protocol)."""

    event_id: int
    title: str
    status: WorldEventStatus


# --- world-event artifacts (an addition to the protocol, also stored in the log) ---


@frozen
class KnowledgeArtifact:
    """On completion, ``source_id`` learns ``fact`` about ``target_id``."""

    source_id: str = field(validator=at_most(MAX_ID))
    target_id: str = field(validator=at_most(MAX_ID))
    fact: str = field(validator=[not_blank, at_most(MAX_FACT)])


@frozen
class RelationshipArtifact:
    """On completion, the edge ``source_id`` → ``target_id`` changes by these deltas."""

    source_id: str = field(validator=at_most(MAX_ID))
    target_id: str = field(validator=at_most(MAX_ID))
    affinity_delta: int = field(default=0, validator=_delta)
    trust_delta: int = field(default=0, validator=_delta)


@frozen
class ObjectArtifact:
    """On completion, ``holder_id`` acquires the object ``name``."""

    holder_id: str = field(validator=at_most(MAX_ID))
    name: str = field(validator=[not_blank, at_most(MAX_NAME)])


@frozen
class Artifacts:
    """What a world event changes when it completes."""

    knowledge_facts: tuple[KnowledgeArtifact, ...] = ()
    relationship_changes: tuple[RelationshipArtifact, ...] = ()
    acquired_objects: tuple[ObjectArtifact, ...] = ()

    def __attrs_post_init__(self) -> None:
        if self.count > MAX_ARTIFACTS and limits_apply():
            raise FieldTooLarge(
                f"artifacts name {self.count} changes; at most {MAX_ARTIFACTS} are allowed"
            )

    @property
    def count(self) -> int:
        """How many changes these artifacts name, all lists together."""
        return (
            len(self.knowledge_facts) + len(self.relationship_changes) + len(self.acquired_objects)
        )
