"""The state-update classifier: how one entity's feelings toward everyone present moved.

Called after every beat once per present entity (the person included),
covering its edges toward everyone else present: 2 calls for one to one,
3 for three, N for N, concurrently through the pool. Each entry of the
answer becomes an ``edge_update`` event. Safe default: what the lexicon
reads in the exchange (:func:`judge_by_words`), so a failed call still moves
a relationship a kind or a cruel line should move; no facts.

A small embedded model cannot make this judgement (it calls every line
warmer), so a chat on one skips the model and takes :func:`judge_by_words`
alone (``Cast.judge``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from attrs import frozen

from protocol import Edge

from .._messages import PromptMessage
from .._relations import describe_edge
from .._sentiment import tone
from .._text import collapse, shorten
from ._coerce import as_int, as_texts, field, load_json, render_lines

MAX_DELTA = 10
"""The largest change of affinity or trust one beat can make, either way."""
MAX_FACTS = 3
MAX_FACT_CHARS = 200


@frozen
class StateChange:
    """How the edge source → target moves after a beat (the default is no change)."""

    affinity_delta: int = 0
    trust_delta: int = 0
    knowledge_facts: tuple[str, ...] = ()


STATE_UPDATE_DEFAULT = StateChange()

_DELTA = {"type": "integer", "minimum": -MAX_DELTA, "maximum": MAX_DELTA}
STATE_UPDATE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "affinity_delta": _DELTA,
        "trust_delta": _DELTA,
        "knowledge_facts": {
            "type": "array",
            "items": {"type": "string", "maxLength": MAX_FACT_CHARS},
            "maxItems": MAX_FACTS,
        },
    },
    "required": ["affinity_delta", "trust_delta", "knowledge_facts"],
    "additionalProperties": False,
}
"""The JSON the state-update classifier is asked for (read-only)."""


@frozen
class Target:
    """Someone present whose edge from the source a state update judges."""

    id: str
    name: str
    persona: str
    prior: Edge | None
    """The edge source → this target before the beat (``None``: no history yet)."""


def state_updates_schema(target_ids: Sequence[str]) -> dict[str, Any]:
    """The JSON one source's state update is asked for: one entry per target id."""
    return {
        "type": "object",
        "properties": {
            "edges": {
                "type": "object",
                "properties": {t: STATE_UPDATE_SCHEMA for t in target_ids},
                "required": list(target_ids),
                "additionalProperties": False,
            }
        },
        "required": ["edges"],
        "additionalProperties": False,
    }


EXAMPLES = (
    "Examples, for a source A and a target B:\n"
    'B: "Thank you, you saved my life. I owe you everything." -> '
    '{"affinity_delta": 4, "trust_delta": 3, "knowledge_facts": ["B owes A their life"]}\n'
    'B: "You lied to me, you thief. Get out of my sight." -> '
    '{"affinity_delta": -5, "trust_delta": -4, "knowledge_facts": []}\n'
    'B: "Two ales, please." -> {"affinity_delta": 0, "trust_delta": 0, "knowledge_facts": []}'
)
"""Worked answers in the state update's prompt: a warm line, a hostile one, a neutral one, so
a model sees that deltas have signs and sizes, and does not copy the zeros of the form."""


def state_update_prompt(
    source_id: str,
    source_name: str,
    source_persona: str,
    targets: Sequence[Target],
    dialogue: Sequence[str],
) -> tuple[PromptMessage, ...]:
    """Messages asking how ``source`` now feels about each of ``targets``, in one call.

    The user message starts with one ``pair: SOURCE_ID -> TARGET_ID`` line
    per target. ``dialogue`` is ``"Name: text"`` lines, oldest first (see
    :func:`transcript_lines`), of which only the last few are sent.
    """
    s = source_name
    form = ", ".join(
        f'"{t.id}": {{"affinity_delta": 0, "trust_delta": 0, "knowledge_facts": []}}'
        for t in targets
    )
    who = "; ".join(f"{t.id} is {t.name}" for t in targets)
    system = (
        f"You keep track of relationships in a story. Judge how {s}'s feelings toward each "
        f"other person present changed in the latest exchange ({who}). Reply with JSON only, "
        f'in this form:\n{{"edges": {{{form}}}}}\n'
        f"affinity_delta: how much more (positive) or less (negative) {s} likes that person, "
        f"-{MAX_DELTA} to {MAX_DELTA}. trust_delta: the same for trust. Most exchanges "
        f"change little; use 0 when nothing changed. knowledge_facts: at most {MAX_FACTS} "
        f"short facts {s} newly learned about that person in this exchange, or none.\n"
        f"{EXAMPLES}"
    )
    # The ids name the pairs for logs and for scripted backends that match on them.
    header = "".join(f"pair: {source_id} -> {t.id}\n" for t in targets)
    people = "".join(
        f"{t.name}: {shorten(collapse(t.persona), 600) or '(no description)'}\n" for t in targets
    )
    before = "".join(
        f"Before this exchange, {s} toward {t.name}: {describe_edge(t.prior)}\n" for t in targets
    )
    user = (
        f"{header}"
        f"{s}: {shorten(collapse(source_persona), 600) or '(no description)'}\n"
        f"{people}"
        f"{before}\n"
        f"The latest exchange:\n{render_lines(dialogue, 8, 600)}"
    )
    return (PromptMessage("system", system), PromptMessage("user", user))


def validate_state_update(raw: object) -> StateChange:
    """Read the classifier's answer: deltas clamped to ±10, at most 3 short distinct facts.

    Numbers may come as floats (rounded) or numeric strings; anything
    unreadable counts as no change. Never raises.
    """
    data = load_json(raw)
    return StateChange(
        affinity_delta=as_int(field(data, "affinity_delta", "affinity"), -MAX_DELTA, MAX_DELTA, 0),
        trust_delta=as_int(field(data, "trust_delta", "trust"), -MAX_DELTA, MAX_DELTA, 0),
        knowledge_facts=as_texts(
            field(data, "knowledge_facts", "facts", "knowledge"), MAX_FACTS, MAX_FACT_CHARS
        ),
    )


def validate_state_updates(
    raw: object,
    target_ids: Sequence[str],
    fallback: Mapping[str, StateChange] | None = None,
) -> dict[str, StateChange]:
    """Read one source's answer: an entry per target, each as :func:`validate_state_update`.

    The entries may sit under ``edges`` or at the top level; a target with
    no readable entry (or an unreadable answer) gets its ``fallback`` (the
    lexicon's reading, see :func:`judge_by_words`), else no change. Never raises.
    """
    data = load_json(raw)
    entries = data.get("edges", data) if isinstance(data, dict) else {}
    if not isinstance(entries, dict):
        entries = {}
    spare = fallback or {}
    return {
        t: validate_state_update(entries[t])
        if isinstance(entries.get(t), dict)
        else spare.get(t, STATE_UPDATE_DEFAULT)
        for t in target_ids
    }


def default_state_updates(target_ids: Sequence[str]) -> dict[str, StateChange]:
    """No change toward anyone: the default when nothing was said."""
    return {t: STATE_UPDATE_DEFAULT for t in target_ids}


def judge_by_words(
    exchange: Sequence[tuple[str, str]], target_ids: Sequence[str]
) -> dict[str, StateChange]:
    """How the source's edges toward ``target_ids`` move by what each target said, read by words.

    ``exchange`` is the latest exchange the source witnessed, as ``(speaker id,
    text)`` pairs; each target's own words move the source's feelings toward
    it, by the lexicon of ``story._sentiment``. A target who said nothing
    moves nothing. No facts: the lexicon learns none.
    """
    said: dict[str, list[str]] = {}
    for speaker_id, text in exchange:
        said.setdefault(speaker_id, []).append(text)
    changes: dict[str, StateChange] = {}
    for target in target_ids:
        heard = tone(" ".join(said.get(target, ())))
        changes[target] = StateChange(affinity_delta=heard.warmth, trust_delta=heard.trust)
    return changes
