"""What a card puts into its character's prompt: sections, greetings and macros.

A card's description, personality, scenario and example dialogue become
sections of the prompt, each with a cut rank (the examples are cut first,
the description last); ``system_prompt`` and ``post_history_instructions``
replace the defaults, ``{{original}}`` in them standing for the default.
``creator_notes``, ``tags``, ``creator`` and ``character_version`` never
reach a prompt. Macros are replaced at prompt time with the names in the
scene: ``{{char}}``, ``<BOT>``, ``<char>`` by the card's V3 ``nickname``
or its name; ``{{user}}``, ``<USER>`` by the person's name; case aside.
"""

from __future__ import annotations

import re
from typing import Literal

from attrs import frozen

from ._cards import Card

SectionKind = Literal[
    "system_prompt",
    "description",
    "personality",
    "scenario",
    "example",
    "post_history_instructions",
]
"""Which part of a card a prompt section comes from."""

CUT_RANK: dict[SectionKind, int] = {
    "example": 0,
    "scenario": 1,
    "personality": 2,
    "description": 3,
    "post_history_instructions": 4,
    "system_prompt": 5,
}
"""The order sections are cut in under a tight budget: lowest first (examples first)."""

_CHAR = re.compile(r"\{\{char\}\}|<bot>|<char>", re.IGNORECASE)
_USER = re.compile(r"\{\{user\}\}|<user>", re.IGNORECASE)
_ORIGINAL = re.compile(r"\{\{original\}\}", re.IGNORECASE)
_START = re.compile(r"<start>", re.IGNORECASE)


@frozen
class CardSection:
    """One section a card adds to its character's prompt, macros already replaced."""

    kind: SectionKind
    text: str

    @property
    def cut_rank(self) -> int:
        """Where the section stands in the cut order (lower is cut earlier)."""
        return CUT_RANK[self.kind]


def char_name(card: Card) -> str:
    """The name ``{{char}}`` stands for: the V3 nickname if there is one, else the name."""
    return card.nickname or card.name


def fill_macros(text: str, char: str, user: str) -> str:
    """``text`` with ``char`` and ``user`` in place of the macros (lore content, greetings...)."""
    text = _CHAR.sub(lambda _: char, text)
    return _USER.sub(lambda _: user, text)


def replace_macros(text: str, card: Card, user: str) -> str:
    """``text`` with the card's character's name and the person's in place of the macros."""
    return fill_macros(text, char_name(card), user)


def card_examples(card: Card, user: str) -> tuple[str, ...]:
    """The card's example dialogues: ``mes_example`` split on ``<START>``, each trimmed."""
    parts = _START.split(card.mes_example)
    return tuple(p for p in (replace_macros(part, card, user).strip() for part in parts) if p)


def card_sections(
    card: Card,
    user: str,
    *,
    default_system: str = "",
    default_post_history: str = "",
) -> tuple[CardSection, ...]:
    """The sections ``card`` adds to its character's prompt, in prompt order.

    ``system_prompt`` replaces ``default_system`` (``{{original}}`` in it
    is the default); an empty one leaves the default, as the V2 spec asks.
    Likewise ``post_history_instructions`` with ``default_post_history``.
    Empty sections are left out.
    """
    sections: list[CardSection] = []

    def add(kind: SectionKind, text: str) -> None:
        text = text.strip()
        if text:
            sections.append(CardSection(kind, text))

    add("system_prompt", _override(card.system_prompt, default_system, card, user))
    add("description", replace_macros(card.description, card, user))
    add("personality", replace_macros(card.personality, card, user))
    add("scenario", replace_macros(card.scenario, card, user))
    for example in card_examples(card, user):
        add("example", example)
    add(
        "post_history_instructions",
        _override(card.post_history_instructions, default_post_history, card, user),
    )
    return tuple(sections)


def card_greetings(card: Card, user: str, *, group: bool = False) -> tuple[str, ...]:
    """The first messages to offer: ``first_mes``, then ``alternate_greetings``.

    In a chat with more than one character (``group``), the V3
    ``group_only_greetings`` are offered too. Empty ones are skipped.
    """
    options = [card.first_mes, *card.alternate_greetings]
    if group:
        options.extend(card.group_only_greetings)
    return tuple(replace_macros(g, card, user) for g in options if g.strip())


def _override(text: str, default: str, card: Card, user: str) -> str:
    if not text.strip():
        return default
    return replace_macros(_ORIGINAL.sub(lambda _: default, text), card, user)
