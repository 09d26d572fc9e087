"""Every classifier: its prompt, its output schema, validation with clamping, its default.

A validator accepts anything (the model may lie) and returns a sane value;
the default is what a failed, stalled or nonsensical call yields. Each
prompt is small, asks for one JSON object, and names the schema's keys.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import attrs

from protocol import Bot, Edge, Memory

from ._prompt import PromptMessage
from ._values import as_bool, as_int, as_text, as_texts, clamp

MAX_DELTA = 10
MAX_FACTS = 3
FACT_LENGTH = 200

Schema = dict[str, Any]


def _ask(task: str, schema: Schema, body: str) -> tuple[PromptMessage, ...]:
    return (
        PromptMessage(
            "system",
            f"{task}\nAnswer with one JSON object and nothing else, matching this schema:\n"
            f"{json.dumps(schema, separators=(',', ':'))}",
        ),
        PromptMessage("user", body),
    )


def _object(properties: Mapping[str, Any]) -> Schema:
    return {
        "type": "object",
        "properties": dict(properties),
        "required": list(properties),
        "additionalProperties": False,
    }


# --- state update: one directed pair ---


@attrs.frozen
class StateChange:
    """How one directed edge moves after a beat."""

    affinity_delta: int = 0
    trust_delta: int = 0
    knowledge_facts: tuple[str, ...] = ()


STATE_UPDATE_SCHEMA = _object(
    {
        "affinity_delta": {"type": "integer", "minimum": -MAX_DELTA, "maximum": MAX_DELTA},
        "trust_delta": {"type": "integer", "minimum": -MAX_DELTA, "maximum": MAX_DELTA},
        "knowledge_facts": {
            "type": "array",
            "items": {"type": "string", "maxLength": FACT_LENGTH},
            "maxItems": MAX_FACTS,
        },
    }
)


def state_update_prompt(
    source_id: str,
    source_name: str,
    source_persona: str,
    target_id: str,
    target_name: str,
    edge: Edge,
    recent: Sequence[str],
) -> tuple[PromptMessage, ...]:
    """Ask how ``source`` now feels about ``target`` after the latest exchange."""
    body = (
        f"pair: {source_id} -> {target_id}\n"
        f"{source_name}: {source_persona}\n"
        f"How {source_name} felt about {target_name} before: affinity {edge.affinity}/100, "
        f"trust {edge.trust}/100.\n"
        "Recent dialogue:\n" + "\n".join(recent[-10:])
    )
    return _ask(
        f"You track relationships in a story. From {source_name}'s point of view, how did "
        f"the latest exchange change their affinity and trust toward {target_name} "
        f"(integers from -{MAX_DELTA} to {MAX_DELTA}; 0 when nothing changed), and what new "
        f"facts did {source_name} learn about {target_name} (at most {MAX_FACTS}, short)?",
        STATE_UPDATE_SCHEMA,
        body,
    )


def validate_state_update(raw: Any) -> StateChange:
    """Clamp deltas to ±10 and keep at most three short, distinct facts."""
    if not isinstance(raw, Mapping):
        return StateChange()
    return StateChange(
        clamp(as_int(raw.get("affinity_delta")), -MAX_DELTA, MAX_DELTA),
        clamp(as_int(raw.get("trust_delta")), -MAX_DELTA, MAX_DELTA),
        as_texts(raw.get("knowledge_facts"), MAX_FACTS, FACT_LENGTH),
    )


# --- significance ---

SIGNIFICANCE_SCHEMA = _object({"significance": {"type": "integer", "minimum": 0, "maximum": 3}})


def significance_prompt(memory: str, context: str) -> tuple[PromptMessage, ...]:
    """Ask how much a memory matters to the story, 0 to 3."""
    return _ask(
        "Rate how significant this moment is for the characters' story: 0 trivial, 1 minor, "
        "2 notable, 3 pivotal (a revelation, a promise, a betrayal, a turning point).",
        SIGNIFICANCE_SCHEMA,
        f"What was said: {context}\nThe moment: {memory}",
    )


def validate_significance(raw: Any) -> int:
    """0..3, clamped; anything unreadable is 0."""
    if isinstance(raw, Mapping):
        raw = raw.get("significance")
    return clamp(as_int(raw), 0, 3)


# --- addressee ---

ADDRESSEE_SCHEMA = _object({"addressee": {"type": "string", "enum": ["host", "guest"]}})


def addressee_prompt(prose: str, host_name: str, guest_name: str) -> tuple[PromptMessage, ...]:
    """Ask which of two characters the user's prose speaks to."""
    return _ask(
        f"Two characters are present: {host_name} (answer \"host\") and {guest_name} "
        "(answer \"guest\"). Who is the user's prose addressed to?",
        ADDRESSEE_SCHEMA,
        prose,
    )


def validate_addressee(raw: Any, host_name: str = "", guest_name: str = "") -> Literal[
    "host", "guest"
]:
    """``guest`` only when the output clearly says so (by role or by name); else ``host``."""
    value = raw.get("addressee") if isinstance(raw, Mapping) else raw
    if not isinstance(value, str):
        return "host"
    word = value.strip().lower()
    if word == "guest" or (guest_name and word == guest_name.strip().lower()):
        return "guest"
    return "host"


# --- interjection ---

INTERJECTION_SCHEMA = _object(
    {"interject": {"type": "boolean"}, "reason": {"type": "string", "maxLength": 200}}
)


@attrs.frozen
class InterjectionDecision:
    """Whether the silent witness speaks up, and why."""

    interject: bool = False
    reason: str = ""


def interjection_prompt(
    witness: Bot,
    edge_to_addressee: Edge,
    edge_to_you: Edge,
    addressee_name: str,
    you_name: str,
    you_said: str,
    addressee_said: str,
) -> tuple[PromptMessage, ...]:
    """Ask whether the silent witness would speak up now."""
    body = (
        f"{witness.name}: {witness.persona}\n"
        f"{witness.name} toward {addressee_name}: affinity {edge_to_addressee.affinity}, "
        f"trust {edge_to_addressee.trust}. Toward {you_name}: affinity {edge_to_you.affinity}, "
        f"trust {edge_to_you.trust}.\n"
        f"{you_name} said: {you_said}\n{addressee_name} answered: {addressee_said}"
    )
    return _ask(
        f"{witness.name} is present but was not addressed. Would {witness.name} speak up now? "
        "Only when it would be natural and add something; most of the time, no.",
        INTERJECTION_SCHEMA,
        body,
    )


def validate_interjection(raw: Any) -> InterjectionDecision:
    """``interject`` must be clearly true; anything else is no."""
    if not isinstance(raw, Mapping):
        return InterjectionDecision()
    return InterjectionDecision(as_bool(raw.get("interject")), as_text(raw.get("reason"), 200))


# --- world-event lifecycle ---

LIFECYCLE_SCHEMA = _object(
    {
        "transitions": {
            "type": "array",
            "items": _object(
                {
                    "event_id": {"type": "integer"},
                    "status": {"type": "string", "enum": ["active", "completed", "cancelled"]},
                }
            ),
        }
    }
)

LEGAL_MOVES = {
    "planned": {"active", "cancelled"},
    "active": {"completed", "cancelled"},
}


@attrs.frozen
class OpenEvent:
    """A world event the lifecycle classifier may move."""

    id: int
    status: str
    title: str
    description: str = ""


def lifecycle_prompt(events: Sequence[OpenEvent], narrative: str) -> tuple[PromptMessage, ...]:
    """Ask which world events the latest beat started, completed or cancelled."""
    listing = "\n".join(f"- id {e.id} [{e.status}] {e.title}: {e.description}" for e in events)
    return _ask(
        "You track world events in a story. Planned events may start (active) or be "
        "cancelled; active ones may complete or be cancelled. Given what just happened, "
        "list only the events whose status changed (usually none).",
        LIFECYCLE_SCHEMA,
        f"Events:\n{listing}\nWhat just happened: {narrative}",
    )


def validate_lifecycle(raw: Any, events: Sequence[OpenEvent]) -> tuple[tuple[int, str], ...]:
    """Known ids, legal moves only, at most one move per event."""
    if not isinstance(raw, Mapping) or not isinstance(raw.get("transitions"), list):
        return ()
    status = {e.id: e.status for e in events}
    moves: dict[int, str] = {}
    for item in raw["transitions"]:
        if not isinstance(item, Mapping):
            continue
        event_id = as_int(item.get("event_id"), -1)
        target = item.get("status")
        if (
            event_id in status
            and event_id not in moves
            and isinstance(target, str)
            and target in LEGAL_MOVES.get(status[event_id], set())
        ):
            moves[event_id] = target
    return tuple(moves.items())


# --- scene close ---

SCENE_CLOSE_SCHEMA = _object(
    {
        "close": {"type": "boolean"},
        "new_location": {"type": ["string", "null"], "maxLength": 200},
    }
)


@attrs.frozen
class SceneCloseDecision:
    """Whether the scene ends, and where the next one is."""

    close: bool = False
    new_location: str | None = None


def scene_close_prompt(prose: str, location: str | None) -> tuple[PromptMessage, ...]:
    """Ask whether the user's prose ends the scene (and where the story moves)."""
    return _ask(
        "Does this prose end the current scene (the characters part, time skips, or they "
        "move elsewhere)? If they move, name the new place briefly.",
        SCENE_CLOSE_SCHEMA,
        f"Current place: {location or 'unknown'}\nProse: {prose}",
    )


def validate_scene_close(raw: Any) -> SceneCloseDecision:
    """A clear true closes; the location is a short name or nothing."""
    if not isinstance(raw, Mapping):
        return SceneCloseDecision()
    place = as_text(raw.get("new_location"), 80) or None
    return SceneCloseDecision(as_bool(raw.get("close")), place)


# --- scene summary, per witness ---

SCENE_SUMMARY_SCHEMA = _object(
    {
        "summary": {"type": "string", "maxLength": 600},
        "edge_summaries": {"type": "object", "additionalProperties": {"type": "string"}},
        "knowledge": {
            "type": "array",
            "items": _object({"about": {"type": "string"}, "fact": {"type": "string"}}),
            "maxItems": 6,
        },
    }
)


@attrs.frozen
class SceneSummaryResult:
    """One witness's summary of a closed scene, per-person summaries and learned facts."""

    summary: str
    edge_summaries: Mapping[str, str] = attrs.Factory(dict)
    knowledge: Mapping[str, tuple[str, ...]] = attrs.Factory(dict)


def scene_summary_prompt(
    witness: Bot, transcript: Sequence[str], others: Mapping[str, str]
) -> tuple[PromptMessage, ...]:
    """Ask the witness to sum up the scene, and how it sees each other person now."""
    people = ", ".join(others.values())
    return _ask(
        f"The scene has ended. Summarise it from {witness.name}'s point of view in a few "
        f"sentences; for each of {people}, one sentence on how {witness.name} sees them now "
        "(edge_summaries, keyed by name); and any facts learned about them (knowledge).",
        SCENE_SUMMARY_SCHEMA,
        f"{witness.name}: {witness.persona}\nThe scene:\n" + "\n".join(transcript[-40:]),
    )


def default_scene_summary(transcript: Sequence[str], limit: int = 600) -> SceneSummaryResult:
    """The extractive summary a failed classifier leaves: the scene's last lines."""
    text = ""
    for line in reversed(transcript):
        candidate = f"{line} {text}".strip()
        if len(candidate) > limit:
            break
        text = candidate
    return SceneSummaryResult(text or as_text(" ".join(transcript), limit))


def validate_scene_summary(
    raw: Any, others: Mapping[str, str], transcript: Sequence[str]
) -> SceneSummaryResult:
    """Summary ≤ 600 characters; per-person parts keyed by id (``others``: id → name)."""
    if not isinstance(raw, Mapping):
        return default_scene_summary(transcript)
    summary = as_text(raw.get("summary"), 600)
    if not summary:
        return default_scene_summary(transcript)
    by_name = {name.strip().lower(): id_ for id_, name in others.items()}
    by_name.update({id_.lower(): id_ for id_ in others})
    edges: dict[str, str] = {}
    if isinstance(raw.get("edge_summaries"), Mapping):
        for key, value in raw["edge_summaries"].items():
            target = by_name.get(str(key).strip().lower())
            text = as_text(value, 300)
            if target and text:
                edges[target] = text
    knowledge: dict[str, list[str]] = {}
    if isinstance(raw.get("knowledge"), list):
        for item in raw["knowledge"][:6]:
            if not isinstance(item, Mapping):
                continue
            target = by_name.get(str(item.get("about", "")).strip().lower())
            fact = as_text(item.get("fact"), FACT_LENGTH)
            if target and fact:
                knowledge.setdefault(target, []).append(fact)
    return SceneSummaryResult(summary, edges, {k: tuple(v) for k, v in knowledge.items()})


# --- memories ---


def pov_memory(
    witness: Bot, user_name: str, user_prose: str, speaker_name: str, beat_text: str
) -> str:
    """The memory a witness keeps of a beat, in its own point of view; bounded."""
    said = as_text(user_prose, 300)
    answer = as_text(beat_text, 400)
    if witness.name == speaker_name:
        text = f"{user_name}: {said} — I answered: {answer}" if said else f"I said: {answer}"
    else:
        text = (
            f"{user_name}: {said} — {speaker_name} answered: {answer}"
            if said
            else f"{speaker_name} said: {answer}"
        )
    return text[:800]


def auto_pin_plan(
    memory: Memory, auto_pins: Sequence[Memory], cap: int = 8
) -> tuple[bool, tuple[int, ...]]:
    """Pin a memory scored 3; past the soft cap, unpin the least significant (oldest first).

    ``auto_pins`` holds only automatic pins: manual pins are never evicted.
    """
    if memory.significance < 3 or memory.pinned:
        return False, ()
    pins = [m for m in auto_pins if m.id != memory.id]
    excess = len(pins) + 1 - cap
    if excess <= 0:
        return True, ()
    ranked = sorted(pins, key=lambda m: (m.significance, m.id))
    return True, tuple(m.id for m in ranked[:excess])
