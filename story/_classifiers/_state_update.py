"""The state-update classifier: how one character's feelings toward another moved.

Called after every beat once per directed pair of present entities (2 for
one to one, 6 for three), concurrently through the pool; its result becomes
an ``edge_update`` event. Safe default: no change, no facts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from attrs import frozen

from protocol import Edge

from .._messages import PromptMessage
from .._relations import describe_edge
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


def state_update_prompt(
    source_id: str,
    source_name: str,
    source_persona: str,
    target_id: str,
    target_name: str,
    prior: Edge | None,
    dialogue: Sequence[str],
    *,
    target_persona: str = "",
) -> tuple[PromptMessage, ...]:
    """Messages asking how ``source`` now feels about ``target``, given the latest lines.

    The user message starts with ``pair: SOURCE_ID -> TARGET_ID``.
    ``prior`` is the edge before this beat (``None``: no history yet);
    ``dialogue`` is ``"Name: text"`` lines, oldest first (see
    :func:`transcript_lines`), of which only the last few are sent.
    """
    s, t = source_name, target_name
    system = (
        f"You keep track of relationships in a story. Judge how {s}'s feelings toward {t} "
        f"changed in the latest exchange. Reply with JSON only, in this form:\n"
        f'{{"affinity_delta": 0, "trust_delta": 0, "knowledge_facts": []}}\n'
        f"affinity_delta: how much more (positive) or less (negative) {s} likes {t}, "
        f"-{MAX_DELTA} to {MAX_DELTA}. trust_delta: the same for trust. Most exchanges "
        f"change little; use 0 when nothing changed. knowledge_facts: at most {MAX_FACTS} "
        f"short facts {s} newly learned about {t} in this exchange, or none."
    )
    user = (
        # The ids name the pair for logs and for scripted backends that match on them.
        f"pair: {source_id} -> {target_id}\n"
        f"{s}: {shorten(collapse(source_persona), 600) or '(no description)'}\n"
        f"{t}: {shorten(collapse(target_persona), 600) or '(no description)'}\n"
        f"Before this exchange, {s} toward {t}: {describe_edge(prior)}\n\n"
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
