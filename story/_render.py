"""The layout of a narrative prompt: one system message, then the dialogue.

A draft holds every piece that cuts may shrink; rendering it is a pure
function, so the cutter can re-render after each cut and measure.
"""

from __future__ import annotations

from attrs import frozen

from protocol import Edge, Memory

from ._messages import PromptMessage, Role
from ._parse import strip_ooc
from ._prompt import ActiveEvent, PromptInputs
from ._relations import describe_edge
from ._transcript import speaker_name, turn_text


@frozen
class Line:
    """One dialogue message of the draft, built once (OOC already gone)."""

    event_id: int
    message: PromptMessage


@frozen
class Draft:
    """The cuttable state of a prompt; ``inputs`` holds the rest, unchanged."""

    inputs: PromptInputs
    persona: str
    you_persona: str
    other_persona: str
    other_activity: str
    edges: tuple[tuple[str, Edge | None], ...]
    edge_details: bool
    pinned: tuple[Memory, ...]
    relevant: tuple[Memory, ...]
    events: tuple[ActiveEvent, ...]
    dialogue: tuple[Line, ...]
    prose: str
    addressee_said: str
    system_chars: int | None = None


def draft_of(inputs: PromptInputs) -> Draft:
    """The full draft, before any cut: witness-only filtering happens here."""
    speaker, you, other = inputs.speaker, inputs.you, inputs.other
    present = [you.id] + ([other.id] if other is not None else [])
    mine = {
        e.target_id: e
        for e in inputs.edges
        if e is not None and e.source_id == speaker.id and e.target_id in present
    }
    pinned = tuple(m for m in inputs.pinned if m.bot_id == speaker.id and m.text.strip())
    pinned_ids = {m.id for m in pinned}
    relevant = tuple(
        m
        for m in inputs.relevant
        if m.bot_id == speaker.id and m.text.strip() and m.id not in pinned_ids
    )
    dialogue = _lines(inputs)
    return Draft(
        inputs=inputs,
        persona=speaker.persona.strip(),
        you_persona=you.persona.strip(),
        other_persona=other.persona.strip() if other is not None else "",
        other_activity=(strip_ooc(inputs.other_activity or "") if other is not None else ""),
        edges=tuple((target, mine.get(target)) for target in present),
        edge_details=True,
        pinned=pinned,
        relevant=relevant,
        events=tuple(e for e in inputs.world_events if e.title.strip()),
        dialogue=dialogue,
        prose=strip_ooc(inputs.prose) or f"({you.name} waits.)",
        addressee_said=(
            inputs.interjection.said.strip() if inputs.interjection is not None else ""
        ),
    )


def _lines(inputs: PromptInputs) -> tuple[Line, ...]:
    """The dialogue the speaker witnessed, before this turn, as messages."""
    names = _names(inputs)
    lines = []
    for turn in inputs.dialogue:
        if inputs.entered_at_event_id is not None and turn.event_id < inputs.entered_at_event_id:
            continue  # before the speaker entered the scene: it never saw this
        if inputs.current_turn_id is not None and turn.event_id >= inputs.current_turn_id:
            continue
        text = turn_text(turn)
        if not text:
            continue
        role: Role = "assistant" if turn.speaker_id == inputs.speaker.id else "user"
        name = _name(speaker_name(turn.speaker_id, names))
        lines.append(Line(turn.event_id, PromptMessage(role, text, name)))
    return tuple(lines)


def _names(i: PromptInputs) -> dict[str, str]:
    names = dict(i.names)
    names[i.you.id] = i.you.name
    names[i.speaker.id] = i.speaker.name
    if i.other is not None:
        names[i.other.id] = i.other.name
    return names


MAX_NAME_CHARS = 64
"""Longer names are cut in message ``name`` fields (backends cap them; budgets rely on it)."""


def _name(name: str) -> str:
    return name[:MAX_NAME_CHARS]


def _or_none(text: str) -> str:
    return text if text else "(no description given)"


def system_text(draft: Draft) -> str:
    """The system message: who the speaker is, the scene, the others, then feelings, memories.

    What stays the same from turn to turn comes first and what changes with
    every turn last (from :func:`notes_from` on), so that a backend that keeps
    the evaluated prompt reads only what changed (see docs/models.md).
    """
    text = "\n".join([*_stable_lines(draft), *_notes_lines(draft)])
    if draft.system_chars is not None:
        text = text[: max(0, draft.system_chars)]
    return text


def notes_from(draft: Draft) -> int:
    """Where the system message's per-turn part begins (feelings, memories, events)."""
    stable = len("\n".join(_stable_lines(draft)))
    if draft.system_chars is not None:
        stable = min(stable, max(0, draft.system_chars))
    return stable


def _stable_lines(draft: Draft) -> list[str]:
    """Who the speaker is, the scene, who else is here, how to write: the same every turn."""
    i = draft.inputs
    me, you, other = i.speaker.name, i.you.name, i.other
    lines = [
        f"You are {me}, a character in an ongoing story. Write {me}'s next beat.",
        "",
        f"# {me}",
        _or_none(draft.persona),
        "",
        "# The scene",
        f"Location: {i.where or 'not named yet'}.",
    ]
    if i.location_description.strip():
        lines.append(i.location_description.strip())
    present = f"{you}" + (f" and {other.name}" if other is not None else "")
    lines += [f"Present: {me} (you), {present}.", "", "# Who else is here"]
    lines.append(f"{you} (the person you are playing with): {_or_none(draft.you_persona)}")
    if other is not None:
        lines.append(f"{other.name}: {_or_none(draft.other_persona)}")
    lines += [
        "",
        "# How to write",
        f"- Stay in character as {me}; write only {me}'s words, actions and thoughts.",
        f"- Never write for {you}: not their words, actions, thoughts or feelings.",
    ]
    if other is not None:
        lines.append(f"- Do not speak or act for {other.name} either.")
    lines += [
        '- Put spoken words in "double quotes" and actions between *asterisks*.',
        "- Stay inside the story: no notes to the author, no mention of being an AI.",
    ]
    return lines


def _notes_lines(draft: Draft) -> list[str]:
    """What the speaker feels, remembers and knows right now: it changes every turn."""
    i = draft.inputs
    me, you, other = i.speaker.name, i.you.name, i.other
    names = _names(i)
    lines: list[str] = []
    if other is not None and draft.other_activity:
        lines += ["", f"What {other.name} did last: {draft.other_activity}"]
    lines += ["", f"# How {me} feels about them"]
    for target, edge in draft.edges:
        lines.append(
            f"- {names.get(target, target)}: {describe_edge(edge, details=draft.edge_details)}"
        )
    if draft.pinned or draft.relevant:
        lines += ["", f"# What {me} remembers"]
        lines += [f"- {m.text.strip()}" for m in draft.pinned]
        lines += [f"- {m.text.strip()}" for m in draft.relevant]
    if draft.events:
        lines += ["", "# What is happening in the world"]
        for event in draft.events:
            about = event.description.strip()
            lines.append(f"- {event.title.strip()}" + (f": {about}" if about else ""))
    if i.interjection is not None:
        lines += [
            "",
            "# Right now",
            f"{you} spoke, and {i.interjection.addressee} has just answered. {me} was "
            f"listening and now chimes in with a short beat of their own, reacting to what "
            f"was just said.",
        ]
    return lines


def render(draft: Draft) -> tuple[PromptMessage, ...]:
    """The messages of a draft: system, the dialogue, then what the speaker answers."""
    i = draft.inputs
    messages = [PromptMessage("system", system_text(draft)), *(d.message for d in draft.dialogue)]
    messages.append(PromptMessage("user", draft.prose or "…", _name(i.you.name)))
    if i.interjection is not None:
        messages.append(
            PromptMessage("user", draft.addressee_said or "…", _name(i.interjection.addressee))
        )
    return tuple(messages)
