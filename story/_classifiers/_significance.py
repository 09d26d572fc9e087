"""The significance classifier: how much a fresh memory matters, 0 to 3.

Called in the background after a beat, at low priority, once per beat;
a 3 auto-pins the memory (see :func:`auto_pin_plan`). Safe default: 0.
"""

from __future__ import annotations

from typing import Any

from protocol import MAX_SIGNIFICANCE, MIN_SIGNIFICANCE

from .._messages import PromptMessage
from .._text import collapse, shorten
from ._coerce import as_int, field, load_json

SIGNIFICANCE_DEFAULT = MIN_SIGNIFICANCE

SIGNIFICANCE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "significance": {
            "type": "integer",
            "minimum": MIN_SIGNIFICANCE,
            "maximum": MAX_SIGNIFICANCE,
        }
    },
    "required": ["significance"],
    "additionalProperties": False,
}
"""The JSON the significance classifier is asked for (read-only)."""


def significance_prompt(text: str, context: str = "") -> tuple[PromptMessage, ...]:
    """Messages asking how significant the memory ``text`` is, given some ``context``."""
    system = (
        "You rate memories in a story by how much they matter to the character who holds "
        "them. Reply with JSON only, in this form:\n"
        '{"significance": 0}\n'
        "0: small talk or routine. 1: a detail worth keeping. 2: important to a "
        "relationship or to the story. 3: life-changing: a secret revealed, a loss, a "
        "promise, a betrayal, a turning point."
    )
    user = f"The memory:\n{shorten(collapse(text), 1500)}"
    if context.strip():
        user += f"\n\nWhat led to it:\n{shorten(collapse(context), 1500)}"
    return (PromptMessage("system", system), PromptMessage("user", user))


def validate_significance(raw: object) -> int:
    """Read the score: an integer clamped to 0..3 (a bare number is accepted); else 0."""
    data = load_json(raw)
    value = field(data, "significance", "score", "rating") if isinstance(data, dict) else data
    return as_int(value, MIN_SIGNIFICANCE, MAX_SIGNIFICANCE, SIGNIFICANCE_DEFAULT)
