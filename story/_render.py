"""The layout of a narrative prompt: one system message, then the dialogue.

A draft holds every piece that cuts may shrink; rendering it is a pure
function, so the cutter can re-render after each cut and measure.
"""

from __future__ import annotations

from attrs import frozen

from protocol import Edge, Memory

from ._card_prompt import fill_macros
from ._lore_scan import Activated
from ._messages import PromptMessage, Role
from ._parse import strip_ooc
from ._prompt import ActiveEvent, PromptInputs
from ._prompt_lore import DEFAULT_NOTE_DEPTH as DEFAULT_DEPTH
from ._prompt_lore import IN_SYSTEM, CardParts, card_parts, covered_by, fit_card, lore_for
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
    card: CardParts
    lore: tuple[Activated, ...] = ()
    author_note: str = ""
    pre_cut: tuple[str, ...] = ()
    system_chars: int | None = None


def draft_of(inputs: PromptInputs) -> Draft:
    """The full draft, before any cut: witness-only filtering happens here."""
    speaker, you, other = inputs.speaker, inputs.you, inputs.other
    present = [you.id, *(q.id for q in inputs.people)] + ([other.id] if other is not None else [])
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
    prose = strip_ooc(inputs.prose) or f"({you.name} waits.)"
    said = inputs.interjection.said.strip() if inputs.interjection is not None else ""
    card, card_cut = fit_card(
        card_parts(inputs.card, you.name, opening(speaker.name)), inputs.card_budget
    )
    persona = speaker.persona.strip()
    if inputs.card is not None and covered_by(persona, inputs.card.description):
        persona = ""  # the bot was made from the card: its persona is the description
    # Only what the speaker witnessed wakes lore: the dialogue given, then this turn.
    names = _names(inputs)
    witnessed = [f"{d.message.name or ''}: {d.message.content}" for d in dialogue]
    witnessed.append(f"{you.name}: {prose}")
    if said:
        witnessed.append(f"{inputs.interjection.addressee if inputs.interjection else ''}: {said}")
    char = names[speaker.id]
    if inputs.card is not None:
        char = inputs.card.nickname or char
    lore, lore_cut = lore_for(
        inputs.lorebooks,
        inputs.card,
        witnessed,
        char=char,
        user=you.name,
        budget=inputs.lore_budget,
    )
    note = inputs.author_note
    # A persona may speak in card macros too: the names in the scene fill them.
    persona = fill_macros(persona, char, you.name)
    return Draft(
        inputs=inputs,
        persona=persona,
        you_persona=you.persona.strip(),
        other_persona=(
            fill_macros(other.persona, other.name, you.name).strip() if other is not None else ""
        ),
        other_activity=(strip_ooc(inputs.other_activity or "") if other is not None else ""),
        edges=tuple((target, mine.get(target)) for target in present),
        edge_details=True,
        pinned=pinned,
        relevant=relevant,
        events=tuple(e for e in inputs.world_events if e.title.strip()),
        dialogue=dialogue,
        prose=prose,
        addressee_said=said,
        card=card,
        lore=lore,
        author_note=fill_macros(note.text, char, you.name).strip() if note is not None else "",
        pre_cut=card_cut + lore_cut,
    )


def opening(name: str) -> str:
    """The first line of every character's system message (a card's ``{{original}}``)."""
    return f"You are {name}, a character in an ongoing story. Write {name}'s next beat."


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
    for person in i.people:
        names[person.id] = person.name
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
    """The system message: who the speaker is, the scene, the others, feelings, memories."""
    i = draft.inputs
    me, you, other = i.speaker.name, i.you.name, i.other
    names = _names(i)
    card = draft.card
    lines = [card.opening, "", f"# {me}"]
    if draft.persona or not card.description:
        lines.append(_or_none(draft.persona))
    if card.description:
        lines.append(card.description)
    if card.personality:
        lines += ["", f"## {me}'s personality", card.personality]
    if card.scenario:
        lines += ["", "## The scenario", card.scenario]
    if card.examples:
        lines += ["", f"## How {me} talks (examples, not part of the story)"]
        lines += [part for example in card.examples for part in ("<START>", example)]
    lines += [
        "",
        "# The scene",
        f"Location: {i.where or 'not named yet'}.",
    ]
    if i.location_description.strip():
        lines.append(i.location_description.strip())
    everyone = [you, *(q.name for q in i.people)] + ([other.name] if other is not None else [])
    present = (
        everyone[0] if len(everyone) == 1 else f"{', '.join(everyone[:-1])} and {everyone[-1]}"
    )
    lines += [f"Present: {me} (you), {present}.", "", "# Who else is here"]
    lines.append(f"{you} (the person you are playing with): {_or_none(draft.you_persona)}")
    for person in i.people:
        # Another person at the table: their persona is theirs to write, never the speaker's.
        lines.append(
            f"{person.name} (another person playing): {_or_none(person.persona.strip()[:300])}"
        )
    if other is not None:
        lines.append(f"{other.name}: {_or_none(draft.other_persona)}")
        if draft.other_activity:
            lines.append(f"What {other.name} did last: {draft.other_activity}")
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
    known = [a.content for a in draft.lore if a.position in IN_SYSTEM and a.content]
    if known:
        lines += ["", f"# What {me} knows of the world"]
        lines += known
    if i.interjection is not None:
        lines += [
            "",
            "# Right now",
            f"{you} spoke, and {i.interjection.addressee} has just answered. {me} was "
            f"listening and now chimes in with a short beat of their own, reacting to what "
            f"was just said.",
        ]
    lines += [
        "",
        "# How to write",
        f"- Stay in character as {me}; write only {me}'s words, actions and thoughts.",
        f"- Never write for {you}: not their words, actions, thoughts or feelings.",
    ]
    if i.people:
        lines.append(f"- Nor for {', '.join(q.name for q in i.people)}.")
    if other is not None:
        lines.append(f"- Do not speak or act for {other.name} either.")
    lines += [
        '- Put spoken words in "double quotes" and actions between *asterisks*.',
        "- Stay inside the story: no notes to the author, no mention of being an AI.",
    ]
    text = "\n".join(lines)
    if draft.system_chars is not None:
        text = text[: max(0, draft.system_chars)]
    return text


def render(draft: Draft) -> tuple[PromptMessage, ...]:
    """The messages of a draft: system, the dialogue, then what the speaker answers.

    The author's note, the card's depth prompt and lore placed at a depth
    go in as system messages that many messages from the end of the
    dialogue; the card's post-history instructions close the prompt.
    """
    i = draft.inputs
    chat = [d.message for d in draft.dialogue]
    chat.append(PromptMessage("user", draft.prose or "…", _name(i.you.name)))
    if i.interjection is not None:
        chat.append(
            PromptMessage("user", draft.addressee_said or "…", _name(i.interjection.addressee))
        )
    # Deepest first, so each insert counts its depth in the dialogue alone.
    for depth, text in sorted(_inserts(draft), key=lambda item: -item[0]):
        chat.insert(max(0, len(chat) - depth), PromptMessage("system", text))
    if draft.card.post_history:
        chat.append(PromptMessage("system", draft.card.post_history))
    return (PromptMessage("system", system_text(draft)), *chat)


def _inserts(draft: Draft) -> list[tuple[int, str]]:
    """The texts placed among the dialogue, with their depth in messages from the end."""
    note_depth = (
        draft.inputs.author_note.depth if draft.inputs.author_note is not None else DEFAULT_DEPTH
    )
    top = [a.content for a in draft.lore if a.position == "an_top" and a.content]
    bottom = [a.content for a in draft.lore if a.position == "an_bottom" and a.content]
    note = "\n".join([*top, *([draft.author_note] if draft.author_note else []), *bottom])
    inserts: list[tuple[int, str]] = []
    if note:
        inserts.append((note_depth, note))
    if draft.card.depth_prompt:
        inserts.append((draft.card.depth_prompt_depth, draft.card.depth_prompt))
    for a in draft.lore:
        if a.position == "at_depth" and a.content:
            inserts.append((a.depth if a.depth is not None else DEFAULT_DEPTH, a.content))
    return inserts
