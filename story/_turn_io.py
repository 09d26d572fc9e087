"""The turn machine's vocabulary: who is present, what it is told, what it asks for.

Inputs are what happened (the person said, a read came back, a beat ended,
a classifier answered, someone asked to cancel); commands are what the
machine wants done (read, append, stream a beat, classify, score, settle).
All are frozen: a driver executes each command and feeds its result back
as the matching input. docs/story.md ("The turn machine") has the table.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Literal

from attrs import field, frozen

from protocol import YOU_ID, Artifacts, Bot, Edge, Entity, Scene, Segment, Turn, WorldEventStatus
from protocol import events as ev

from ._classifiers import (
    InterjectionDecision,
    SceneCloseDecision,
    SceneSummaryResult,
    StateChange,
    Transition,
)
from ._errors import StoryError
from ._messages import PromptMessage
from ._prompt import Interjection


class TurnError(StoryError):
    """An input the turn does not expect now: the driver's mistake, never the person's."""


Judge = Literal["model", "rules"]
"""Who judges a beat's passes (see :attr:`Cast.judge`)."""


@frozen
class Cast:
    """Who is present for the turn: N characters (the host first) and H people.

    Host and guest are N = 2; a chat with one person has H = 1, that person
    being ``you``.
    """

    chat_id: str
    location: str | None
    characters: tuple[Bot, ...]
    people: tuple[Entity, ...]
    muted: frozenset[str] = frozenset()
    """Characters who answer only when the person forces them (``reply_as``)."""
    max_beats: int = 3
    """The most beats a turn streams, interjections included."""
    judge: Judge = "model"
    """Who judges a beat's passes: the classifiers (``model``), or rules with no model
    call (``rules``: relationships by the sentiment lexicon, an interjection by the
    witness the beat names), for a model too small to tell a kind line from a cruel one."""

    def __attrs_post_init__(self) -> None:
        if not self.characters or not self.people:
            raise TurnError("a cast needs at least one character and one person")
        if self.max_beats < 1:
            raise TurnError(f"a turn needs room for at least one beat, got {self.max_beats}")
        ids = self.present_ids
        if len(set(ids)) != len(ids):
            raise TurnError(f"everyone present needs an id of their own, got {ids}")

    @property
    def host(self) -> Bot:
        """The character who answers when nobody in particular is addressed."""
        return self.characters[0]

    @property
    def present_ids(self) -> tuple[str, ...]:
        """Everyone present: the characters in cast order, then the people."""
        return (*(c.id for c in self.characters), *(p.id for p in self.people))

    @property
    def names(self) -> dict[str, str]:
        """Display names of everyone present, by id, in :attr:`present_ids` order."""
        return {
            **{c.id: c.name for c in self.characters},
            **{p.id: p.name for p in self.people},
        }

    @property
    def personas(self) -> dict[str, str]:
        """Personas of everyone present, by id."""
        return {
            **{c.id: c.persona for c in self.characters},
            **{p.id: p.persona for p in self.people},
        }

    def character(self, bot_id: str) -> Bot | None:
        """The character present with this id, if any."""
        return next((c for c in self.characters if c.id == bot_id), None)

    def person(self, person_id: str) -> Entity | None:
        """The person present with this id, if any."""
        return next((p for p in self.people if p.id == person_id), None)


@frozen
class OpenWorldEvent:
    """A planned or active world event as the turn reads it, artifacts included."""

    id: int
    status: WorldEventStatus
    title: str
    description: str = ""
    artifacts: Artifacts = field(factory=Artifacts)


Answer = (
    str
    | StateChange
    | dict[str, StateChange]
    | InterjectionDecision
    | SceneCloseDecision
    | SceneSummaryResult
    | tuple[Transition, ...]
)
"""What a classifier gives back, validated: one of the story classifiers' results."""


# --- inputs ---


@frozen
class Regenerate:
    """The turn runs again for a beat; ``speaker_id`` keeps its speaker.

    ``supersedes`` is the beat the new one replaces on the same branch (as older
    releases did); None when the turn runs on a branch forked for it, where the
    old beat is simply not on the path.
    """

    supersedes: int | None
    speaker_id: str | None = None
    """The superseded beat's speaker, kept when the prose was not edited."""


@frozen
class PersonSaid:
    """The person's prose was appended as ``user_turn_id``: the turn begins."""

    user_turn_id: int
    prose: str
    segments: tuple[Segment, ...]
    person_id: str = YOU_ID
    regenerate: Regenerate | None = None
    reply_as: str | None = None
    """The character the person forces to answer (muted or not); ``None``: the rules decide."""


@frozen
class ContinueAsked:
    """The person asked the chat's latest beat to go on: a turn that only extends it.

    ``event_id`` is the beat's row on the timeline (its ``assistant_turn``),
    ``beat_id`` the beat's id its tokens carry, ``text`` what it says so far.
    """

    event_id: int
    beat_id: int
    speaker_id: str
    user_turn_id: int
    text: str
    prose: str
    """The person's prose the beat answers (OOC included; the prompt removes it)."""
    person_id: str = YOU_ID


@frozen
class Loaded:
    """What a :class:`Read` asked for, as the store holds it now."""

    scene: Scene | None = None
    edges: tuple[Edge, ...] = ()
    dialogue: tuple[Turn, ...] = ()
    world_events: tuple[OpenWorldEvent, ...] = ()
    witnessed: tuple[tuple[int, tuple[str, ...]], ...] = ()
    """Who was present for each turn of ``dialogue``, by event id; a turn left out
    counts as witnessed by everyone present now."""


def seen_by(
    dialogue: tuple[Turn, ...], witnessed: tuple[tuple[int, tuple[str, ...]], ...], who: str
) -> tuple[Turn, ...]:
    """The turns of ``dialogue`` that ``who`` was present for (see :attr:`Loaded.witnessed`)."""
    present = dict(witnessed)
    return tuple(t for t in dialogue if who in present.get(t.event_id, (who,)))


@frozen
class Appended:
    """An :class:`Append` committed; ``ids`` are its events' ids, in order."""

    ids: tuple[int, ...]


@frozen
class BeatEnded:
    """A :class:`StreamBeat` ended and its ``assistant_turn`` (``event_id``) was committed."""

    event_id: int
    text: str
    truncated: bool = False
    error: str | None = None

    @property
    def completed(self) -> bool:
        """The beat ran to its natural end and said something."""
        return not self.truncated and bool(self.text.strip())


@frozen
class Classified:
    """The classifier asked as ``key`` answered, or its default stood in for it."""

    key: str
    value: Answer


@frozen
class CancelRequested:
    """Stop the beat in flight and any beat still to come in this turn."""

    reason: str = "cancelled"


@frozen
class Halted:
    """A command failed so that the turn cannot go on (disk full, shutdown, a bug)."""

    reason: str


Input = (
    PersonSaid
    | ContinueAsked
    | Loaded
    | Appended
    | BeatEnded
    | Classified
    | CancelRequested
    | Halted
)
INPUTS: tuple[type[Input], ...] = (
    PersonSaid,
    ContinueAsked,
    Loaded,
    Appended,
    BeatEnded,
    Classified,
    CancelRequested,
    Halted,
)


# --- commands ---


@frozen
class Read:
    """Read the chat's state; answered by :class:`Loaded`."""

    scene: bool = False
    """The chat's open scene."""
    edges_among: tuple[str, ...] = ()
    """Every directed edge among these ids, defaults included."""
    dialogue: int = 0
    """The chat's newest visible turns, at most this many, oldest first."""
    world_events: tuple[WorldEventStatus, ...] = ()
    """The chat's world events with these statuses, oldest first."""


@frozen
class Append:
    """Append these events in one transaction and publish them; answered by :class:`Appended`."""

    events: tuple[ev.Event, ...]


@frozen
class BeatRequest:
    """What a speaker's beat is asked with, as the story decides it.

    The driver gathers the speaker's own view (its memories, edges, the
    recent dialogue before ``before_event_id``) and assembles the prompt.
    """

    speaker_id: str
    prose: str
    """The person's prose without OOC."""
    before_event_id: int
    """Dialogue from this event on is the turn itself, told by ``prose`` and ``interjection``."""
    interjection: Interjection | None = None
    stop: tuple[str, ...] = ()
    """Stop sequences: the tags of everyone else, so a beat never speaks for them."""
    person_id: str = YOU_ID
    """The person whose prose the beat answers (the turn's persona)."""


@frozen
class StreamBeat:
    """Stream one beat and commit it, whatever happens; answered by :class:`BeatEnded`."""

    request: BeatRequest
    user_turn_id: int
    interjection_of: str | None = None
    supersedes: int | None = None
    cancelled: str | None = None
    """A cancel that came before the beat: it starts and ends at once, with this reason."""


@frozen
class ContinueBeat:
    """Stream more of the beat ``event_id`` and append it to the beat; answered by
    :class:`BeatEnded` (its ``text`` is what the continuation added)."""

    request: BeatRequest
    event_id: int
    beat_id: int
    user_turn_id: int
    text: str
    """The beat's text so far: the model goes on from it, and the tokens' offsets follow it."""
    cancelled: str | None = None
    """A cancel that came before the continuation: it starts and ends at once, with this reason."""


@frozen
class StopBeat:
    """Cut the beat in flight short, with ``reason`` (nothing to answer)."""

    reason: str


@frozen
class Classify:
    """Ask a classifier; answered by :class:`Classified` with the same ``key``.

    A failure, a timeout or an unusable answer is answered with ``default``.
    """

    key: str
    name: str
    messages: tuple[PromptMessage, ...]
    schema: Mapping[str, object]
    validate: Callable[[object], Answer] = field(eq=False, repr=False)
    default: Answer
    critical: bool = True
    """The turn waits on the answer (every pass the machine asks for does: the
    chat takes no new turn until this one settles), so the backend serves it
    before background calls such as significance scoring, after narrative beats."""


@frozen
class ScoreSignificance:
    """Score these memories in the background (nothing to answer)."""

    memory_ids: tuple[int, ...]
    text: str
    context: str


@frozen
class Settle:
    """The turn is over: record ``turn_settled``; the last command of every turn."""

    user_turn_id: int
    resync: bool = False
    """A regenerated turn left the timeline: every watcher redraws."""


Command = (
    Read | Append | StreamBeat | ContinueBeat | StopBeat | Classify | ScoreSignificance | Settle
)
