"""The interjection classifier: whether the silent witness speaks up.

Called with a guest present, after a primary beat that completed (not
cancelled, not errored, not empty), once per turn. If it fires, the witness
streams a second beat. Safe default: stay quiet.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from attrs import frozen

from protocol import Bot, Edge

from .._messages import PromptMessage
from .._parse import strip_ooc
from .._relations import describe_edge
from .._text import collapse, shorten
from ._coerce import as_bool, as_text, field, load_json

MAX_REASON_CHARS = 300


@frozen
class InterjectionDecision:
    """Whether the witness interjects, and why (for logs and tests)."""

    interject: bool = False
    reason: str = ""


INTERJECTION_DEFAULT = InterjectionDecision()

INTERJECTION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "interject": {"type": "boolean"},
        "reason": {"type": "string", "maxLength": MAX_REASON_CHARS},
    },
    "required": ["interject", "reason"],
    "additionalProperties": False,
}
"""The JSON the interjection classifier is asked for (read-only)."""


def interjection_prompt(
    witness: Bot,
    edge_to_addressee: Edge | None,
    edge_to_you: Edge | None,
    addressee_name: str,
    you_name: str,
    you_said: str,
    addressee_said: str,
) -> tuple[PromptMessage, ...]:
    """Messages asking whether ``witness``, who was not addressed, would speak up now.

    ``you_said`` is the person's prose; any OOC note left in it is removed here.
    """
    w = witness.name
    system = (
        f"You direct a scene. {you_name} spoke to {addressee_name}, who has just answered. "
        f"{w} is present but was not addressed. Decide whether {w} would speak up right now: "
        f"only with a real reason, such as being mentioned, feeling strongly, knowing "
        f"something that matters, or it being very much in character. Most of the time "
        f"{w} stays quiet. Reply with JSON only, in this form:\n"
        f'{{"interject": false, "reason": "one short sentence"}}'
    )
    user = (
        f"{w}: {shorten(collapse(witness.persona), 600) or '(no description)'}\n"
        f"{w} toward {addressee_name}: {describe_edge(edge_to_addressee)}\n"
        f"{w} toward {you_name}: {describe_edge(edge_to_you)}\n\n"
        f"{you_name}: {shorten(collapse(strip_ooc(you_said)), 1200)}\n"
        f"{addressee_name}: {shorten(collapse(addressee_said), 1500)}"
    )
    return (PromptMessage("system", system), PromptMessage("user", user))


def validate_interjection(raw: object) -> InterjectionDecision:
    """Read the decision: ``interject`` must be clearly yes, else the witness stays quiet."""
    data = load_json(raw)
    if not isinstance(data, Mapping):
        return InterjectionDecision(as_bool(data), "")
    return InterjectionDecision(
        interject=as_bool(field(data, "interject", "should_interject", "speak")),
        reason=as_text(field(data, "reason", "why"), MAX_REASON_CHARS),
    )
