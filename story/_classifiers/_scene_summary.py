"""The scene-summary classifier: one witness's own account of a scene that closed.

Called when a scene closes, once per witness (each bot present), with
only what that witness saw. Its summary becomes a ``scene_summary`` event,
its edge summaries update the witness's edges, its knowledge is promoted
into them. Safe default: an extractive summary built from the transcript,
so a failed call still leaves something useful.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

from attrs import field, frozen

from protocol import MAX_ID, Bot

from .._messages import PromptMessage
from .._text import collapse, shorten
from ._coerce import MAX_SCANNED, as_items, as_text, load_json, render_lines, resolve
from ._coerce import field as get

MAX_SUMMARY_CHARS = 600
MAX_EDGE_SUMMARY_CHARS = 300
MAX_KNOWLEDGE = 5
MAX_FACT_CHARS = 200
MAX_TARGET_CHARS = MAX_ID
MAX_PEOPLE = 8

_SENTENCE_END = re.compile(r"(?<=[.!?…])\s")


def _mapping(value: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(value))


@frozen
class SceneSummaryResult:
    """One witness's account of a closed scene.

    ``edge_summaries`` maps a person's id to how the witness now sees them;
    ``knowledge`` maps a person's id to the facts the witness learned about them.
    """

    summary: str
    edge_summaries: Mapping[str, str] = field(factory=dict, converter=_mapping, hash=False)
    knowledge: Mapping[str, tuple[str, ...]] = field(factory=dict, converter=_mapping, hash=False)


SCENE_SUMMARY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "summary": {"type": "string", "maxLength": MAX_SUMMARY_CHARS},
        "edge_summaries": {
            "type": "object",
            "additionalProperties": {"type": "string", "maxLength": MAX_EDGE_SUMMARY_CHARS},
        },
        "knowledge": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "about": {"type": "string"},
                    "fact": {"type": "string", "maxLength": MAX_FACT_CHARS},
                },
                "required": ["about", "fact"],
            },
            "maxItems": MAX_KNOWLEDGE,
        },
    },
    "required": ["summary", "edge_summaries", "knowledge"],
}
"""The JSON the scene-summary classifier is asked for (read-only)."""


def extractive_summary(
    transcript: Sequence[str], witness_name: str | None = None, location: str | None = None
) -> str:
    """A summary made of the transcript's own first sentences, at most 600 characters.

    Deterministic: the first two lines and as many of the last ones as fit,
    with the witness's own lines as "I". ``transcript`` is ``"Name: text"`` lines.
    """
    me = collapse(witness_name or "").casefold()
    pieces = []
    for line in transcript:
        name, colon, text = line.partition(": ")
        if not colon:
            name, text = "", line
        sentence = _SENTENCE_END.split(collapse(text), maxsplit=1)[0]
        if not sentence:
            continue
        who = "I" if me and collapse(name).casefold() == me else collapse(name)
        pieces.append(shorten(f"{who}: {sentence}" if who else sentence, 160))
    opening = f"At {collapse(location)}: " if location and collapse(location) else ""
    if not pieces:
        return shorten(f"{opening}nothing of note was said.", MAX_SUMMARY_CHARS)
    whole = opening + " / ".join(pieces)
    if len(whole) <= MAX_SUMMARY_CHARS:
        return whole
    head = opening + " / ".join(pieces[:2]) + " / … / "
    tail: list[str] = []
    for piece in reversed(pieces[2:]):
        if len(head) + len(" / ".join([piece, *tail])) > MAX_SUMMARY_CHARS:
            break
        tail.insert(0, piece)
    return shorten(head + " / ".join(tail) if tail else head.rstrip(" /…"), MAX_SUMMARY_CHARS)


def default_scene_summary(
    transcript: Sequence[str], witness_name: str | None = None, location: str | None = None
) -> SceneSummaryResult:
    """The safe default: the extractive summary, no edge summaries, no knowledge."""
    return SceneSummaryResult(extractive_summary(transcript, witness_name, location))


def scene_summary_prompt(
    witness: Bot,
    transcript: Sequence[str],
    others: Mapping[str, str],
    location: str | None = None,
) -> tuple[PromptMessage, ...]:
    """Messages asking ``witness`` for its summary of the scene it saw.

    ``others`` maps the id of everyone else present to their name;
    ``transcript`` is only what the witness saw, as ``"Name: text"`` lines.
    """
    w = witness.name
    names = ", ".join(others.values()) or "nobody else"
    system = (
        f"The scene just ended. Write {w}'s own account of it, in the first person as {w}, "
        f"past tense, at most five sentences. For each other character, add one sentence on "
        f"how {w} now sees them, and list up to {MAX_KNOWLEDGE} facts {w} learned about them. "
        f"Reply with JSON only, in this form:\n"
        f'{{"summary": "...", "edge_summaries": {{"<name>": "..."}}, '
        f'"knowledge": [{{"about": "<name>", "fact": "..."}}]}}'
    )
    user = (
        f"{w}: {shorten(collapse(witness.persona), 600) or '(no description)'}\n"
        f"Also present: {names}\n"
        f"Location: {location or 'unnamed'}\n\n"
        f"What {w} saw:\n{render_lines(transcript, 30, 400)}"
    )
    return (PromptMessage("system", system), PromptMessage("user", user))


def _target(key: object, others: Mapping[str, str]) -> str | None:
    if others:
        return resolve(key, others)
    text = as_text(key, MAX_TARGET_CHARS)
    return text or None


def validate_scene_summary(
    raw: object,
    others: Mapping[str, str] | None = None,
    transcript: Sequence[str] = (),
    witness_name: str | None = None,
    location: str | None = None,
) -> SceneSummaryResult:
    """Read the account, clamped: summary ≤ 600 chars, one short note per known person,
    at most 5 facts of ≤ 200 chars.

    Names in ``edge_summaries`` keys and ``knowledge.about`` are resolved to
    ids through ``others`` (id → name; ids, names and first names all
    work) and dropped if they match nobody; with no ``others`` they are kept
    as written. An empty or missing summary becomes the extractive one.
    """
    people = dict(others or {})
    data = load_json(raw)
    summary = as_text(get(data, "summary", "text"), MAX_SUMMARY_CHARS)
    if not summary:
        summary = extractive_summary(transcript, witness_name, location)
    notes: dict[str, str] = {}
    edges = get(data, "edge_summaries", "edges", "relationships")
    pairs: list[tuple[object, object]] = []
    if isinstance(edges, Mapping):
        pairs = list(edges.items())[:MAX_SCANNED]
    else:
        for item in as_items(edges):
            pairs.append((get(item, "target", "name", "about"), get(item, "summary", "text")))
    for key, value in pairs:
        target = _target(key, people)
        text = as_text(value, MAX_EDGE_SUMMARY_CHARS)
        if target is not None and text and target not in notes and len(notes) < MAX_PEOPLE:
            notes[target] = text
    facts: dict[str, list[str]] = {}
    count = 0
    for item in as_items(get(data, "knowledge", "facts")):
        about = _target(get(item, "about", "target", "who"), people)
        fact = as_text(get(item, "fact", "text"), MAX_FACT_CHARS)
        known = facts.setdefault(about, []) if about is not None and fact else None
        if known is None or fact.casefold() in (f.casefold() for f in known):
            continue
        known.append(fact)
        count += 1
        if count >= MAX_KNOWLEDGE:
            break
    knowledge = {about: tuple(found) for about, found in facts.items() if found}
    return SceneSummaryResult(summary, notes, knowledge)
