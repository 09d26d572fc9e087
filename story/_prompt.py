"""Assembling a character's narrative prompt under soft and hard token budgets.

The speaker is told only what it witnessed: its own memories (the caller
passes no one else's) and the dialogue since it entered the chat. OOC never
reaches it (the caller passes ``prose_for_model``).

Over the soft budget, cuts happen in this order, each only as far as needed:

1. relevant memories, least relevant first;
2. dialogue turns, oldest first, down to the last ``min_dialogue``;
3. world-event descriptions (titles stay);
4. pinned memories beyond the newest three, oldest first;
5. the other character's latest activity.

Over the hard budget, the rest of the dialogue goes, oldest first; then the
pinned memories; then the persona is shortened; last, the user's prose. The
result never exceeds the hard budget.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import attrs

from protocol import Bot, Edge, Entity, Memory, Turn

from ._budget import estimate_tokens, truncate_to_tokens

Role = Literal["system", "user", "assistant"]

MESSAGE_OVERHEAD = 4
KEEP_PINNED = 3


@attrs.frozen
class PromptMessage:
    """One message of a prompt; ``name`` is the speaker's display name."""

    role: Role
    content: str
    name: str | None = None


@attrs.frozen
class Interjection:
    """The speaker is the silent witness, chiming in after the addressee's beat."""

    addressee: str
    said: str


@attrs.frozen
class PromptInputs:
    """Everything a beat's prompt may hold."""

    speaker: Bot
    you: Entity
    prose: str
    names: Mapping[str, str] = attrs.Factory(dict)
    other: Bot | None = None
    other_activity: str | None = None
    location: str | None = None
    edges: tuple[Edge, ...] = ()
    pinned: tuple[Memory, ...] = ()
    relevant: tuple[Memory, ...] = ()
    world_events: tuple[tuple[str, str], ...] = ()
    dialogue: tuple[Turn, ...] = ()
    interjection: Interjection | None = None
    entered_at_event_id: int | None = None
    soft_budget: int = 1600
    hard_budget: int = 2400
    min_dialogue: int = 4


@attrs.frozen
class Prompt:
    """The messages, what was cut to fit, and the estimated size."""

    messages: tuple[PromptMessage, ...]
    cut: tuple[str, ...]
    tokens: int


def _feeling(edge: Edge) -> str:
    def word(value: int, high: str, low: str) -> str:
        if value >= 70:
            return f"strong {high}"
        if value >= 55:
            return high
        if value <= 30:
            return f"strong {low}"
        if value <= 45:
            return low
        return "neutral"

    return (
        f"{word(edge.affinity, 'fondness', 'dislike')} ({edge.affinity}/100), "
        f"{word(edge.trust, 'trust', 'distrust')} ({edge.trust}/100)"
    )


@attrs.define
class _Parts:
    persona: str
    pinned: list[Memory]
    relevant: list[Memory]
    dialogue: list[Turn]
    events: list[tuple[str, str]]
    activity: str | None
    prose: str


def _system(inputs: PromptInputs, parts: _Parts) -> str:
    speaker, you = inputs.speaker, inputs.you
    names = {**inputs.names, you.id: you.name, speaker.id: speaker.name}
    lines = [f"You are {speaker.name}, a character in an ongoing story."]
    if parts.persona:
        lines.append(parts.persona)
    present = [you.name] + ([inputs.other.name] if inputs.other else [])
    where = f"at {inputs.location}" if inputs.location else "in the current scene"
    lines.append(f"The scene: {where}. Present with you: {', '.join(present)}.")
    if you.persona:
        lines.append(f"{you.name}: {you.persona}")
    if inputs.other is not None:
        lines.append(f"{inputs.other.name}: {inputs.other.persona}".strip())
        if parts.activity:
            lines.append(f"What {inputs.other.name} did last: {parts.activity}")
    for edge in inputs.edges:
        target = names.get(edge.target_id, edge.target_id)
        line = f"How you feel about {target}: {_feeling(edge)}."
        if edge.summary:
            line += f" {edge.summary}"
        if edge.knowledge_facts:
            line += f" You know: {'; '.join(edge.knowledge_facts)}."
        lines.append(line)
    memories = [*parts.pinned, *parts.relevant]
    if memories:
        lines.append("You remember:")
        lines.extend(f"- {memory.text}" for memory in memories)
    if parts.events:
        lines.append("Happening in the world:")
        lines.extend(f"- {title}{': ' + text if text else ''}" for title, text in parts.events)
    if inputs.interjection is not None:
        lines.append(
            f"{inputs.interjection.addressee} was addressed and has just answered. You were "
            f"listening; now you chime in, briefly, as {speaker.name}."
        )
    lines.append(
        f"Stay in character. Write only what {speaker.name} says and does, in a few "
        f"sentences. Never write {you.name}'s words or actions."
    )
    return "\n".join(lines)


def _messages(inputs: PromptInputs, parts: _Parts) -> list[PromptMessage]:
    speaker, you = inputs.speaker, inputs.you
    names = {**inputs.names, you.id: you.name, speaker.id: speaker.name}
    out = [PromptMessage("system", _system(inputs, parts))]
    for turn in parts.dialogue:
        name = names.get(turn.speaker_id, turn.speaker_id)
        role: Role = "assistant" if turn.speaker_id == speaker.id else "user"
        out.append(PromptMessage(role, turn.text, name))
    if parts.prose:
        out.append(PromptMessage("user", parts.prose, you.name))
    if inputs.interjection is not None:
        out.append(PromptMessage("user", inputs.interjection.said, inputs.interjection.addressee))
    return out


def _size(messages: list[PromptMessage]) -> int:
    return sum(estimate_tokens(m.content) + MESSAGE_OVERHEAD for m in messages)


def assemble_prompt(inputs: PromptInputs) -> Prompt:
    """The speaker's prompt, cut to fit the budgets in the documented order."""
    dialogue = [
        turn
        for turn in inputs.dialogue
        if inputs.entered_at_event_id is None or turn.event_id >= inputs.entered_at_event_id
    ]
    parts = _Parts(
        inputs.speaker.persona,
        list(inputs.pinned),
        list(inputs.relevant),
        dialogue,
        list(inputs.world_events),
        inputs.other_activity,
        inputs.prose,
    )
    cut: list[str] = []

    def size() -> int:
        return _size(_messages(inputs, parts))

    soft, hard = inputs.soft_budget, max(inputs.hard_budget, 1)
    # 1. relevant memories, least relevant (last) first
    while size() > soft and parts.relevant:
        parts.relevant.pop()
        _note(cut, "relevant memory")
    # 2. dialogue, oldest first, down to the floor
    while size() > soft and len(parts.dialogue) > inputs.min_dialogue:
        parts.dialogue.pop(0)
        _note(cut, "old dialogue")
    # 3. world-event descriptions
    if size() > soft and any(text for _, text in parts.events):
        parts.events = [(title, "") for title, _ in parts.events]
        _note(cut, "world event descriptions")
    # 4. pinned memories beyond the newest few
    while size() > soft and len(parts.pinned) > KEEP_PINNED:
        parts.pinned.pop(0)
        _note(cut, "pinned memory")
    # 5. the other character's activity
    if size() > soft and parts.activity:
        parts.activity = None
        _note(cut, "other activity")
    # Hard budget: whatever it takes.
    while size() > hard and parts.dialogue:
        parts.dialogue.pop(0)
        _note(cut, "dialogue (hard)")
    while size() > hard and parts.pinned:
        parts.pinned.pop(0)
        _note(cut, "pinned memory (hard)")
    if size() > hard and parts.persona:
        excess = size() - hard
        keep = max(0, estimate_tokens(parts.persona) - excess)
        parts.persona = truncate_to_tokens(parts.persona, keep) if keep > 8 else ""
        _note(cut, "persona (hard)")
    if size() > hard and parts.prose:
        excess = size() - hard
        keep = max(0, estimate_tokens(parts.prose) - excess - 1)
        parts.prose = truncate_to_tokens(parts.prose, keep) if keep > 0 else ""
        _note(cut, "prose (hard)")
    messages = _messages(inputs, parts)
    return Prompt(tuple(messages), tuple(cut), _size(messages))


def _note(cut: list[str], what: str) -> None:
    if what not in cut:
        cut.append(what)
