"""Where a turn is (its phase) and what it knows so far (its progress).

Each phase waits for one kind of answer: the phase names what the turn is
waiting on. :class:`Progress` is frozen; a step makes a new one.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

from attrs import evolve, field, frozen

from protocol import Bot, Edge, Entity, blank_edge

from ._addressee import addressees_by_rules
from ._classifiers import InterjectionDecision, SceneSummaryResult, StateChange
from ._scene_rules import SceneCloseRuling, scene_close_by_rules
from ._transcript import transcript_lines
from ._turn_io import (
    BeatEnded,
    Cast,
    Classified,
    Command,
    ContinueAsked,
    Input,
    Loaded,
    OpenWorldEvent,
    PersonSaid,
    TurnError,
    seen_by,
)

T = TypeVar("T")


class Phase(enum.Enum):
    """What the turn waits for now (see :data:`WAITS`)."""

    IDLE = "idle"
    OPENING = "opening"
    OPENING_SCENE = "opening_scene"
    ADDRESSING = "addressing"
    PRIMARY = "primary"
    READING = "reading"
    REMEMBERING = "remembering"
    WEIGHING = "weighing"
    RELATING = "relating"
    DECIDING = "deciding"
    INTERJECTION = "interjection"
    WORLD_READING = "world_reading"
    WORLD_ASKING = "world_asking"
    WORLD_MOVING = "world_moving"
    CLOSING_ASKING = "closing_asking"
    CLOSING_READING = "closing_reading"
    SUMMARISING = "summarising"
    CLOSING = "closing"
    CONTINUING = "continuing"
    SETTLED = "settled"


WAITS: dict[Phase, str] = {
    Phase.IDLE: "Nothing yet: waits for the person's prose.",
    Phase.OPENING: "Reads whether a scene is open.",
    Phase.OPENING_SCENE: "Appends the scene it opens (there was none).",
    Phase.ADDRESSING: "Asks the addressee classifier (the rules could not decide).",
    Phase.PRIMARY: "Streams the addressee's beat.",
    Phase.READING: "Reads the edges and the dialogue a beat's passes need.",
    Phase.REMEMBERING: "Appends one memory per witness.",
    Phase.WEIGHING: "Asks one state update per entity present (its edges to the others).",
    Phase.RELATING: "Appends the edge updates.",
    Phase.DECIDING: "Waits for the interjection ranking still out.",
    Phase.INTERJECTION: "Streams the silent witness's beat.",
    Phase.WORLD_READING: "Reads the open world events.",
    Phase.WORLD_ASKING: "Asks the lifecycle classifier.",
    Phase.WORLD_MOVING: "Appends the world events' moves and what completing them promotes.",
    Phase.CLOSING_ASKING: "Asks the scene-close classifier (the rules were unsure).",
    Phase.CLOSING_READING: "Reads the dialogue the witnesses sum up.",
    Phase.SUMMARISING: "Asks each witness's scene summary.",
    Phase.CLOSING: "Appends the closed scene, its summaries, and the next scene.",
    Phase.CONTINUING: "Streams more of the latest beat (``continue``), appended to it.",
    Phase.SETTLED: "Done: the turn settled; every later input is a leftover and ignored.",
}
"""What each state is doing while it waits."""


@frozen
class Progress:
    """A turn in flight: its phase and everything it learnt so far."""

    phase: Phase
    cast: Cast
    said: PersonSaid | None = None
    continued: ContinueAsked | None = None
    """The beat a ``continue`` extends (the turn's only beat); ``None`` for a turn of prose."""
    model_prose: str = ""
    """The person's prose without OOC: all any model reads of it."""
    cancel: str | None = None
    scene_id: int | None = None
    location: str | None = None
    """The open scene's location."""
    speaker_id: str | None = None
    """Who the person addressed: the primary beat's speaker (of the one streaming now)."""
    queue: tuple[str, ...] = ()
    """The characters named after the speaker, to answer next, in the order named."""
    spoken: tuple[str, ...] = ()
    """The characters whose primary beats this turn streamed, in order."""
    beats: int = 0
    """Beats streamed this turn, interjections included (at most ``cast.max_beats``)."""
    last_speaker: str | None = None
    """The character who last spoke to the person before this turn (read at its start)."""
    primary: BeatEnded | None = None
    decide: bool = False
    """The silent witnesses are asked whether they interject (the primary beat completed)."""
    beat: BeatEnded | None = None
    """The beat whose passes run now."""
    beat_speaker: str | None = None
    edges: Mapping[tuple[str, str], Edge] = field(factory=dict)
    lines: tuple[str, ...] = ()
    """The transcript (OOC removed) the classifiers of this phase read."""
    read: Loaded | None = None
    """The dialogue read for this phase, with who witnessed each turn."""
    memory_ids: tuple[int, ...] = ()
    waiting: frozenset[str] = frozenset()
    """Keys of the classifiers asked and not answered yet."""
    changes: Mapping[str, Mapping[str, StateChange]] = field(factory=dict)
    """Each source's state update (by classifier key): its change toward each target."""
    ranking: tuple[str, ...] | None = None
    """Who of the silent witnesses would speak up, best first (``None``: not answered)."""
    interjector: str | None = None
    world: tuple[OpenWorldEvent, ...] = ()
    closing: tuple[str, str | None] | None = None
    """Why the scene closes, and where the next one opens."""
    summaries: Mapping[str, SceneSummaryResult] = field(factory=dict)


def lines_seen_by(p: Progress, who: str) -> tuple[str, ...]:
    """The transcript of the dialogue read, only the turns ``who`` was present for."""
    if p.read is None:
        return p.lines
    return transcript_lines(seen_by(p.read.dialogue, p.read.witnessed, who), p.cast.names)


def expect(value: object, kind: type[T], what: str) -> T:
    """``value`` as a ``kind``, or the driver's mistake."""
    if not isinstance(value, kind):
        raise TurnError(f"{what} should be a {kind.__name__}, got {type(value).__name__}")
    return value


def said_of(p: Progress) -> PersonSaid:
    """The prose that opened the turn."""
    return expect(p.said, PersonSaid, "the turn's prose")


def person_of(p: Progress) -> Entity:
    """The person who spoke."""
    person = p.cast.person(said_of(p).person_id)
    return expect(person, Entity, "the person who spoke")


def character_of(p: Progress, bot_id: str | None) -> Bot:
    """A character present."""
    return expect(p.cast.character(bot_id or ""), Bot, f"character {bot_id!r}")


def speakers_by_rules(p: Progress) -> tuple[str, ...] | None:
    """Who answers, in order, when it is clear without a classifier; ``None``: ask it.

    ``reply_as`` forces its character (muted or not); a regenerated beat
    keeps its speaker if still present; else :func:`addressees_by_rules`
    (names in the order named, else the last speaker, else the host).
    """
    said = said_of(p)
    cast = p.cast
    for forced in (said.reply_as, said.regenerate.speaker_id if said.regenerate else None):
        if forced is not None and cast.character(forced) is not None:
            return (forced,)
    return addressees_by_rules(said.prose, cast.characters, p.last_speaker, cast.muted)


def last_speaker_in(p: Progress, loaded: Loaded) -> str | None:
    """Who last spoke in ``loaded``'s dialogue before this turn: present, not muted."""
    user_turn = said_of(p).user_turn_id
    for turn in reversed(loaded.dialogue):
        if turn.kind != "assistant" or turn.user_turn_id == user_turn:
            continue
        if p.cast.character(turn.speaker_id) is not None and turn.speaker_id not in p.cast.muted:
            return turn.speaker_id
    return None


def silent_witnesses(p: Progress) -> tuple[Bot, ...]:
    """The characters present who did not answer this turn and are not muted, in cast order."""
    answered = {p.speaker_id, *p.spoken}
    return tuple(c for c in p.cast.characters if c.id not in answered and c.id not in p.cast.muted)


def edge_of(p: Progress, source: str, target: str) -> Edge:
    """The edge as last read (a never-touched edge is 50/50 and blank)."""
    return p.edges.get((source, target)) or blank_edge(source, target)


def pairs_of(p: Progress) -> tuple[tuple[str, str], ...]:
    """Every directed pair of people and characters present."""
    present = p.cast.present_ids
    return tuple((a, b) for a in present for b in present if a != b)


def scene_ruling(p: Progress) -> SceneCloseRuling:
    """What the scene-close rules read in the person's prose (OOC included)."""
    return scene_close_by_rules(said_of(p).prose, p.location)


def chosen_interjector(p: Progress, ranking: Sequence[str] | None) -> str | None:
    """The first of the ranking who is a silent witness still present."""
    silent = {w.id for w in silent_witnesses(p)}
    return next((w for w in ranking or () if w in silent), None)


def input_name(i: Input | type[Input]) -> str:
    """An input's class name, for messages."""
    return i.__name__ if isinstance(i, type) else type(i).__name__


Step = tuple[Progress, tuple[Command, ...]]
"""What an effect gives back: the new progress and the commands to run."""
Guard = Callable[[Progress, Input], bool]
Effect = Callable[[Progress, Input], Step]

INTERJECTION = "interjection"
STATE_UPDATE = "state_update:"
SCENE_SUMMARY = "scene_summary:"
"""Classifier keys: the one ranking, and prefixes whose rest names the witness or source."""


def answer_of(i: Input) -> Classified:
    """The input as a classifier's answer."""
    return expect(i, Classified, "the answer")


def key_of(i: Input) -> str:
    """The classifier key the input answers, if it is an answer."""
    return i.key if isinstance(i, Classified) else ""


def with_decision(p: Progress, i: Input) -> Progress:
    """The progress with the interjection ranking kept."""
    decision = expect(answer_of(i).value, InterjectionDecision, "interjection")
    return evolve(p, ranking=decision.ranking)


def with_last_speaker(p: Progress, i: Input) -> Progress:
    """The progress with who last spoke, when the input is the turn's first read."""
    if isinstance(i, Loaded):
        return evolve(p, last_speaker=last_speaker_in(p, i))
    return p
