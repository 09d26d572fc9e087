"""What a prompt loses when it is over budget, in a decided order.

Over the soft budget, one item at a time, each step until it has nothing
left to give before the next starts:

1. relevant memories, least relevant first (``relevant_memory:<id>``);
2. the card's example dialogues, last first (``card_example:<n>``);
3. dialogue, oldest first, down to the last ``dialogue_floor`` turns
   (``dialogue:<event id>``);
4. lore entries, lowest priority first (``lore:<label>``);
5. world-event descriptions, last listed first, keeping the titles
   (``world_event_description:<title>``);
6. pinned memories beyond the first ``pinned_floor``, last first
   (``pinned_memory:<id>``);
7. the other character's latest activity (``other_activity``).

Still over the hard budget after all of that:

8. the rest of the dialogue, oldest first (``dialogue:<event id>``);
9. pinned memories cut to a short line each (``pinned_memories_truncated``),
   then dropped, last first (``pinned_memory:<id>``);
10. the other character's and the user's personas truncated
    (``other_persona_truncated``, ``user_persona_truncated``);
11. relationship summaries and facts, keeping the numbers (``edge_details``);
12. world events, last first (``world_event:<title>``);
13. the card's scenario, then its personality (``card_scenario``,
    ``card_personality``);
14. the speaker's persona and the card's description truncated
    (``persona_truncated``, ``card_description_truncated``);
15. the addressee's words (interjection) and the user's prose, keeping their
    end (``addressee_said_truncated``, ``prose_truncated``);
16. the author's note, the card's depth prompt and post-history
    instructions (``author_note_truncated``, ``depth_prompt_truncated``,
    ``post_history_truncated``), then the texts of 10, 14 and 15 down to
    nothing, and at last the system message itself (``system_truncated``) —
    so the result never exceeds the hard budget.

Before any of this, the card's sections and the lore are held to budgets of
their own (see ``_prompt_lore``); what those cut comes first in ``cut``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from attrs import evolve

from ._messages import MESSAGE_OVERHEAD, message_tokens, prompt_tokens
from ._prompt import Prompt, PromptInputs
from ._prompt_lore import lore_label, lore_rank
from ._render import Draft, draft_of, render
from ._text import CHARS_PER_TOKEN, shorten, shorten_tail

Step = Callable[[Draft, int], "tuple[Draft, str] | None"]
"""A cut: given a draft and the tokens over the limit, a smaller draft and its name."""

_SHORT_MEMORY = 160


def _drop_relevant(draft: Draft, _excess: int) -> tuple[Draft, str] | None:
    if not draft.relevant:
        return None
    gone = draft.relevant[-1]
    return evolve(draft, relevant=draft.relevant[:-1]), f"relevant_memory:{gone.id}"


def _drop_dialogue(floor: int | None) -> Step:
    def step(draft: Draft, _excess: int) -> tuple[Draft, str] | None:
        keep = draft.inputs.dialogue_floor if floor is None else floor
        if len(draft.dialogue) <= keep:
            return None
        gone = draft.dialogue[0]
        return evolve(draft, dialogue=draft.dialogue[1:]), f"dialogue:{gone.event_id}"

    return step


def _drop_event_description(draft: Draft, _excess: int) -> tuple[Draft, str] | None:
    for index in range(len(draft.events) - 1, -1, -1):
        event = draft.events[index]
        if event.description.strip():
            events = list(draft.events)
            events[index] = evolve(event, description="")
            return (
                evolve(draft, events=tuple(events)),
                f"world_event_description:{event.title.strip()}",
            )
    return None


def _drop_pinned(floor: int | None) -> Step:
    def step(draft: Draft, _excess: int) -> tuple[Draft, str] | None:
        keep = draft.inputs.pinned_floor if floor is None else floor
        if len(draft.pinned) <= keep:
            return None
        gone = draft.pinned[-1]
        return evolve(draft, pinned=draft.pinned[:-1]), f"pinned_memory:{gone.id}"

    return step


def _drop_other_activity(draft: Draft, _excess: int) -> tuple[Draft, str] | None:
    if not draft.other_activity:
        return None
    return evolve(draft, other_activity=""), "other_activity"


def _shorten_pinned(draft: Draft, _excess: int) -> tuple[Draft, str] | None:
    if all(len(m.text) <= _SHORT_MEMORY for m in draft.pinned):
        return None
    pinned = tuple(evolve(m, text=shorten(m.text.strip(), _SHORT_MEMORY)) for m in draft.pinned)
    return evolve(draft, pinned=pinned), "pinned_memories_truncated"


def _drop_edge_details(draft: Draft, _excess: int) -> tuple[Draft, str] | None:
    if not draft.edge_details:
        return None
    return evolve(draft, edge_details=False), "edge_details"


def _drop_event(draft: Draft, _excess: int) -> tuple[Draft, str] | None:
    if not draft.events:
        return None
    gone = draft.events[-1]
    return evolve(draft, events=draft.events[:-1]), f"world_event:{gone.title.strip()}"


def _drop_card_example(draft: Draft, _excess: int) -> tuple[Draft, str] | None:
    examples = draft.card.examples
    if not examples:
        return None
    card = evolve(draft.card, examples=examples[:-1])
    return evolve(draft, card=card), f"card_example:{len(examples)}"


def _drop_lore(draft: Draft, _excess: int) -> tuple[Draft, str] | None:
    if not draft.lore:
        return None
    # The lowest ranked goes; among equals the one placed last.
    at = min(range(len(draft.lore)), key=lambda n: (lore_rank(draft.lore[n]), -n))
    gone = draft.lore[at]
    return evolve(draft, lore=draft.lore[:at] + draft.lore[at + 1 :]), f"lore:{lore_label(gone)}"


def _drop_card_part(name: str) -> Step:
    def step(draft: Draft, _excess: int) -> tuple[Draft, str] | None:
        if not getattr(draft.card, name):
            return None
        changes: dict[str, Any] = {name: ""}
        return evolve(draft, card=evolve(draft.card, **changes)), f"card_{name}"

    return step


def _shrink_card(attribute: str, label: str, floor: int) -> Step:
    """Truncate one text of the card's parts by about the excess, never below ``floor``."""

    def step(draft: Draft, excess: int) -> tuple[Draft, str] | None:
        text: str = getattr(draft.card, attribute)
        target = max(floor, len(text) - excess * CHARS_PER_TOKEN - 8)
        if target >= len(text):
            return None
        changes: dict[str, Any] = {attribute: shorten(text, target)}
        return evolve(draft, card=evolve(draft.card, **changes)), label

    return step


def _shrink(attribute: str, label: str, floor: int, *, keep_end: bool = False) -> Step:
    """Truncate one text of the draft by about the excess, never below ``floor`` chars."""

    def step(draft: Draft, excess: int) -> tuple[Draft, str] | None:
        text: str = getattr(draft, attribute)
        # A little slack for the ellipsis and the word boundary the cut snaps to.
        target = max(floor, len(text) - excess * CHARS_PER_TOKEN - 8)
        if target >= len(text):
            return None
        cut = shorten_tail(text, target) if keep_end else shorten(text, target)
        changes: dict[str, Any] = {attribute: cut}
        return evolve(draft, **changes), label

    return step


SOFT_CUTS: tuple[Step, ...] = (
    _drop_relevant,
    _drop_card_example,
    _drop_dialogue(None),
    _drop_lore,
    _drop_event_description,
    _drop_pinned(None),
    _drop_other_activity,
)

HARD_CUTS: tuple[Step, ...] = (
    _drop_dialogue(0),
    _shorten_pinned,
    _drop_pinned(0),
    _shrink("other_persona", "other_persona_truncated", 300),
    _shrink("you_persona", "user_persona_truncated", 300),
    _drop_edge_details,
    _drop_event,
    _drop_card_part("scenario"),
    _drop_card_part("personality"),
    _shrink("persona", "persona_truncated", 600),
    _shrink_card("description", "card_description_truncated", 600),
    _shrink("addressee_said", "addressee_said_truncated", 400, keep_end=True),
    _shrink("prose", "prose_truncated", 400, keep_end=True),
    _shrink("author_note", "author_note_truncated", 0),
    _shrink_card("depth_prompt", "depth_prompt_truncated", 0),
    _shrink_card("post_history", "post_history_truncated", 0),
    _shrink("other_persona", "other_persona_truncated", 0),
    _shrink("you_persona", "user_persona_truncated", 0),
    _shrink("persona", "persona_truncated", 0),
    _shrink_card("description", "card_description_truncated", 0),
    _shrink("addressee_said", "addressee_said_truncated", 0, keep_end=True),
    _shrink("prose", "prose_truncated", 0, keep_end=True),
)


def _apply(draft: Draft, steps: tuple[Step, ...], limit: int, cut: list[str]) -> Draft:
    tokens = prompt_tokens(render(draft))
    for step in steps:
        while tokens > limit:
            done = step(draft, tokens - limit)
            if done is None:
                break
            draft, name = done
            if name not in cut or ":" in name:
                cut.append(name)
            tokens = prompt_tokens(render(draft))
    return draft


def _trim_system(draft: Draft, limit: int, cut: list[str]) -> Draft:
    messages = render(draft)
    over = prompt_tokens(messages) - limit
    if over <= 0:
        return draft
    system = messages[0]
    room = message_tokens(system) - over - MESSAGE_OVERHEAD
    cut.append("system_truncated")
    return evolve(draft, system_chars=max(0, room) * CHARS_PER_TOKEN)


def fit(inputs: PromptInputs) -> Prompt:
    """Assemble and cut (see the module docstring for the order)."""
    draft = draft_of(inputs)
    cut: list[str] = list(draft.pre_cut)
    draft = _apply(draft, SOFT_CUTS, inputs.soft_budget, cut)
    draft = _apply(draft, HARD_CUTS, inputs.hard_budget, cut)
    draft = _trim_system(draft, inputs.hard_budget, cut)
    messages = render(draft)
    return Prompt(messages=messages, cut=tuple(cut), tokens=prompt_tokens(messages))
