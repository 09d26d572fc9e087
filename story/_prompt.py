"""What a narrative prompt is built from, and what comes out.

:func:`assemble_prompt` is the entry point; the layout lives in
``_render`` and the order of cuts under the token budgets in ``_cuts``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from attrs import field, frozen

from protocol import Bot, Edge, Entity, Memory, Scene, Turn

from ._cards import Card
from ._errors import BudgetError
from ._lore import Lorebook
from ._messages import PromptMessage
from ._prompt_lore import AuthorNote

MIN_HARD_BUDGET = 64
"""The smallest hard budget a prompt can always be squeezed into."""


@frozen
class ActiveEvent:
    """A world event under way, as the speaker is told of it."""

    title: str
    description: str = ""


@frozen
class Interjection:
    """The speaker is the silent witness, chiming in after ``addressee`` said ``said``."""

    addressee: str
    said: str


def _events(items: Iterable[ActiveEvent | tuple[str, str]]) -> tuple[ActiveEvent, ...]:
    return tuple(i if isinstance(i, ActiveEvent) else ActiveEvent(i[0], i[1]) for i in items)


def _edges(items: Iterable[Edge | None]) -> tuple[Edge | None, ...]:
    return tuple(items)


def _memories(items: Iterable[Memory]) -> tuple[Memory, ...]:
    return tuple(items)


def _turns(items: Iterable[Turn]) -> tuple[Turn, ...]:
    return tuple(items)


def _books(items: Iterable[Lorebook]) -> tuple[Lorebook, ...]:
    return tuple(items)


def _names(items: Mapping[str, str]) -> dict[str, str]:
    return dict(items)


@frozen
class PromptInputs:
    """Everything a speaker's beat prompt is built from, as the speaker may know it.

    A character is told only what it witnessed: pass only the speaker's own
    memories (others are dropped here anyway) and set ``entered_at_event_id``
    when it joined the scene late, so no earlier turn reaches it.
    ``relevant`` is ordered most relevant first; ``dialogue`` oldest first,
    and turns at or after ``current_turn_id`` (this turn's own) are left out
    since ``prose`` and ``interjection`` carry them. ``prose`` is the user's
    prose; any OOC left in it, or in a user turn of ``dialogue``, is removed
    here. Budgets are in estimated tokens (see :func:`estimate_tokens`).

    ``card`` is the speaker's own card, if it came from one: its sections,
    its book and its depth prompt reach this prompt only. ``lorebooks`` are
    the books attached to the chat; the lore they wake is looked for in the
    dialogue given (so pass only what the speaker witnessed), the prose and
    the interjection. ``author_note`` is the chat's. ``card_budget`` and
    ``lore_budget`` bound the card's sections and the lore on their own.
    """

    speaker: Bot
    you: Entity
    prose: str
    names: dict[str, str] = field(factory=dict, converter=_names, hash=False)
    other: Bot | None = None
    other_activity: str | None = None
    scene: Scene | None = None
    location: str | None = None
    location_description: str = ""
    edges: tuple[Edge | None, ...] = field(default=(), converter=_edges)
    pinned: tuple[Memory, ...] = field(default=(), converter=_memories)
    relevant: tuple[Memory, ...] = field(default=(), converter=_memories)
    world_events: tuple[ActiveEvent, ...] = field(default=(), converter=_events)
    dialogue: tuple[Turn, ...] = field(default=(), converter=_turns)
    interjection: Interjection | None = None
    people: tuple[Entity, ...] = ()
    """The other people at the table besides ``you`` (the one whose prose this beat answers)."""
    entered_at_event_id: int | None = None
    current_turn_id: int | None = None
    card: Card | None = None
    lorebooks: tuple[Lorebook, ...] = field(default=(), converter=_books, hash=False)
    author_note: AuthorNote | None = None
    card_budget: int = 1200
    lore_budget: int = 600
    soft_budget: int = 3000
    hard_budget: int = 4000
    dialogue_floor: int = 4
    pinned_floor: int = 3

    def __attrs_post_init__(self) -> None:
        if self.hard_budget < MIN_HARD_BUDGET:
            raise BudgetError(
                f"the hard token budget must be at least {MIN_HARD_BUDGET}, not {self.hard_budget}"
            )
        if not 0 < self.soft_budget <= self.hard_budget:
            raise BudgetError(
                f"the soft token budget must be between 1 and the hard budget "
                f"({self.hard_budget}), not {self.soft_budget}"
            )
        if self.card_budget < 0 or self.lore_budget < 0:
            raise BudgetError("the card's and the lore's token budgets cannot be negative")
        if self.dialogue_floor < 0 or self.pinned_floor < 0:
            raise BudgetError("the dialogue and pinned-memory floors cannot be negative")

    @property
    def where(self) -> str | None:
        """The location the scene is at: the scene's own, else the one given."""
        if self.scene is not None and self.scene.location:
            return self.scene.location
        return self.location


@frozen
class Prompt:
    """A beat's prompt: the messages, what was cut to fit the budgets, and its size.

    ``cut`` names each cut in the order made (see docs/story.md for the names).
    """

    messages: tuple[PromptMessage, ...]
    cut: tuple[str, ...]
    tokens: int


def assemble_prompt(inputs: PromptInputs) -> Prompt:
    """Build the speaker's prompt within the budgets, cutting in the decided order.

    Over the soft budget, optional context goes first (least relevant
    memories, then old dialogue down to a floor, world-event descriptions,
    pinned memories beyond a few, the other character's activity). Over the
    hard budget everything but the fixed frame is cut or truncated until it
    fits: the result never exceeds ``hard_budget``.
    """
    from ._cuts import fit

    return fit(inputs)
