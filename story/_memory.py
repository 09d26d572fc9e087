"""What a witness remembers of a beat, and which memories stay pinned."""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from protocol import MAX_NAME, MAX_SIGNIFICANCE, Bot, Memory

from ._text import collapse, shorten

MAX_POV_PART = 280
"""Characters kept of each side of the exchange in a memory."""

MAX_POV_NAME = MAX_NAME
"""Characters kept of a name: as many as a name may have."""

MAX_POV_MEMORY = 2 * (MAX_POV_NAME + 12 + MAX_POV_PART)
"""The longest a per-beat memory text can be: two lines of a name, a verb and an excerpt."""

AUTO_PIN_SIGNIFICANCE = MAX_SIGNIFICANCE
"""The significance at which a memory pins itself."""


def pov_memory(
    witness: Bot, user_name: str, user_prose_for_model: str, speaker_name: str, beat_text: str
) -> str:
    """The memory ``witness`` keeps of one beat, written from its own point of view.

    Deterministic (no model call), so every witness gets its memory the
    moment the beat lands. The speaker remembers "I answered"; a silent
    witness remembers who answered. Each side is cut to a few sentences,
    so the text stays short enough to pin and to put in later prompts.
    """
    said = shorten(collapse(user_prose_for_model), MAX_POV_PART)
    beat = shorten(collapse(beat_text), MAX_POV_PART)
    user = shorten(collapse(user_name), MAX_POV_NAME) or "Someone"
    speaker = shorten(collapse(speaker_name), MAX_POV_NAME) or "Someone"
    mine = collapse(witness.name).casefold() == collapse(speaker_name).casefold()
    lines = []
    if said:
        lines.append(f"{user} said: {said}")
    if mine:
        lines.append(f"I answered: {beat}" if beat else "I said nothing.")
    else:
        lines.append(f"{speaker} answered: {beat}" if beat else f"{speaker} said nothing.")
    return "\n".join(lines)


class PinPlan(NamedTuple):
    """Whether to auto-pin a scored memory, and which auto-pins to unpin to make room."""

    pin: bool
    evict: tuple[int, ...]


def auto_pin_plan(new: Memory, current_auto_pins: Iterable[Memory], cap: int = 8) -> PinPlan:
    """Plan the auto-pin of a freshly scored memory under a soft cap per bot.

    A significance of 3 pins; once the auto-pins would number more than
    ``cap``, the least significant are unpinned, the oldest (lowest id)
    first among equals — never the new one, which is as significant as any.
    Pass only the bot's automatic pins: manual pins are never evicted, so
    they do not count against the cap. A memory already pinned, or scored
    below 3, changes nothing. ``cap`` below 1 counts as 1.
    """
    if new.significance < AUTO_PIN_SIGNIFICANCE or new.pinned:
        return PinPlan(False, ())
    others = {m.id: m for m in current_auto_pins if m.id != new.id}
    over = len(others) + 1 - max(1, cap)
    if over <= 0:
        return PinPlan(True, ())
    ranked = sorted(others.values(), key=lambda m: (m.significance, m.id))
    return PinPlan(True, tuple(m.id for m in ranked[:over]))
