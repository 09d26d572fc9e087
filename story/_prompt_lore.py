"""What a card, the lore and the author's note add to a character's prompt.

A card's sections go into the stable top of the system message (they
change only when the card is edited); the activated lore, the author's
note and the card's ``depth_prompt`` go into the volatile end: lore at the
end of the system message or among the dialogue, the notes a given number
of messages from the end. The card's sections have a budget of their own
(``PromptInputs.card_budget``), cut in the card's cut order, examples
first; the lore has one too (``PromptInputs.lore_budget``), lowest
priority first. Lore is woken only by what the speaker witnessed: the
dialogue the caller passed (its witnessed turns), the prose and, for an
interjection, what the addressee just said; and only the chat's books and
the speaker's own card book are scanned.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from attrs import evolve, frozen

from protocol import MAX_NOTE_DEPTH

from ._card_prompt import card_sections, char_name, fill_macros
from ._cards import Card
from ._lore import Lorebook
from ._lore_scan import Activated, activate
from ._text import collapse, estimate_tokens, shorten

DEFAULT_NOTE_DEPTH = 4
"""Where the author's note goes when none says (SillyTavern's default): four messages up."""


IN_SYSTEM = frozenset({"before_char", "after_char", "examples_top", "examples_bottom", "outlet"})
"""Lore positions that troupe places in the lore section at the end of the system message."""


@frozen
class AuthorNote:
    """The chat's author's note: ``text`` goes ``depth`` messages from the end of the dialogue."""

    text: str
    depth: int = DEFAULT_NOTE_DEPTH


@frozen
class CardParts:
    """A card's sections as the prompt uses them, macros filled, within the card's budget."""

    opening: str
    description: str = ""
    personality: str = ""
    scenario: str = ""
    examples: tuple[str, ...] = ()
    post_history: str = ""
    depth_prompt: str = ""
    depth_prompt_depth: int = DEFAULT_NOTE_DEPTH


def card_parts(card: Card | None, user: str, opening: str) -> CardParts:
    """The parts ``card`` adds, for a person called ``user``; ``opening`` is the default start.

    Without a card, only the default opening. ``system_prompt`` replaces the
    opening (``{{original}}`` in it is the opening) and
    ``post_history_instructions`` goes after the dialogue.
    """
    if card is None:
        return CardParts(opening)
    parts: dict[str, str] = {}
    examples: list[str] = []
    for section in card_sections(card, user, default_system=opening):
        if section.kind == "example":
            examples.append(section.text)
        else:
            parts[section.kind] = section.text
    prompt, depth = depth_prompt_of(card)
    return CardParts(
        opening=parts.get("system_prompt", opening),
        description=parts.get("description", ""),
        personality=parts.get("personality", ""),
        scenario=parts.get("scenario", ""),
        examples=tuple(examples),
        post_history=parts.get("post_history_instructions", ""),
        depth_prompt=fill_macros(prompt, char_name(card), user).strip(),
        depth_prompt_depth=depth,
    )


def depth_prompt_of(card: Card) -> tuple[str, int]:
    """SillyTavern's ``data.extensions.depth_prompt`` of a card: its text and depth, or ""."""
    doc = card.original()
    data = doc.get("data") if card.spec != "v1" else doc
    extensions = data.get("extensions") if isinstance(data, dict) else None
    found = extensions.get("depth_prompt") if isinstance(extensions, dict) else None
    if not isinstance(found, dict):
        return "", DEFAULT_NOTE_DEPTH
    text = found.get("prompt")
    depth = found.get("depth")
    if not isinstance(depth, int) or isinstance(depth, bool):
        depth = DEFAULT_NOTE_DEPTH
    return (text if isinstance(text, str) else ""), min(max(depth, 0), MAX_NOTE_DEPTH)


def fit_card(parts: CardParts, budget: int) -> tuple[CardParts, tuple[str, ...]]:
    """The card's sections cut to ``budget`` tokens, examples first, and the cuts made.

    The order follows the card's cut ranks: examples (last first), the
    scenario, the personality, then the description is shortened. The
    opening, the post-history instructions and the depth prompt are
    instructions, not description: they are outside this budget.
    """
    cut: list[str] = []

    def size(p: CardParts) -> int:
        texts = [p.description, p.personality, p.scenario, *p.examples]
        return sum(estimate_tokens(t) for t in texts if t)

    examples = list(parts.examples)
    while examples and size(_with(parts, examples=tuple(examples))) > budget:
        examples.pop()
        cut.append(f"card_example:{len(examples) + 1}")
    parts = _with(parts, examples=tuple(examples))
    for name in ("scenario", "personality"):
        if size(parts) > budget and getattr(parts, name):
            parts = _with(parts, **{name: ""})
            cut.append(f"card_{name}")
    over = size(parts) - budget
    if over > 0 and parts.description:
        keep = max(0, len(parts.description) - over * 4 - 8)
        parts = _with(parts, description=shorten(parts.description, keep))
        cut.append("card_description_truncated")
    return parts, tuple(cut)


def _with(parts: CardParts, **changes: Any) -> CardParts:
    return evolve(parts, **changes)


def covered_by(persona: str, description: str) -> bool:
    """Whether a persona says nothing the card's description does not (a bot made from it).

    A bot made from a card has the description as its persona, cut to the
    persona's limit: the same text, or its start, whitespace aside.
    """
    short = collapse(persona)
    return not short or collapse(description).startswith(short)


def lore_for(
    books: Sequence[Lorebook],
    card: Card | None,
    witnessed: Sequence[str],
    *,
    char: str,
    user: str,
    budget: int | None,
) -> tuple[tuple[Activated, ...], tuple[str, ...]]:
    """The lore entries ``witnessed`` wakes, macros filled, and the cuts the budget made.

    ``books`` are the chat's; the card's own book is scanned only here, in
    its own character's prompt. Entries come out in insertion order.
    """
    scanned = [*books, *([card.book] if card is not None and card.book is not None else [])]
    if not scanned:
        return (), ()
    found = activate(scanned, witnessed, token_budget=budget)
    entries = tuple(_filled(a, char, user) for a in found.entries)
    return entries, tuple(f"lore:{lore_label(a)}" for a in found.dropped)


def _filled(entry: Activated, char: str, user: str) -> Activated:
    content = fill_macros(entry.content, char, user).strip()
    return evolve(entry, content=content, tokens=estimate_tokens(content))


def lore_label(entry: Activated) -> str:
    """How a cut names a lore entry: its label, else its book and index."""
    return entry.entry.label.strip() or f"{entry.book}.{entry.index}"


def lore_rank(entry: Activated) -> tuple[float, int]:
    """Lower ranks are cut first: ``priority``, else ``insertion_order``; key before constant."""
    causes = {"recursion": 0, "key": 1, "constant": 2}
    value = entry.entry.priority
    return (value if value is not None else entry.entry.insertion_order, causes[entry.cause])
