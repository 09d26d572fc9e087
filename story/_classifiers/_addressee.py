"""The addressee classifier: which of the characters present the person spoke to.

Called only when the rules cannot decide (a name two characters share, or
someone addressed without a name before anyone spoke), before the first
token, with every character who may answer as a candidate. Safe default:
the first candidate (the host, unless muted).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._messages import PromptMessage
from .._names import name_forms
from .._parse import strip_ooc
from .._text import collapse
from ._coerce import field, load_json

ADDRESSEE_DEFAULT = "host"
"""The role the default stands for: the first candidate."""


def addressee_schema(candidate_ids: list[str]) -> dict[str, Any]:
    """The JSON the addressee classifier is asked for: one candidate's id."""
    return {
        "type": "object",
        "properties": {"addressee": {"type": "string", "enum": candidate_ids}},
        "required": ["addressee"],
        "additionalProperties": False,
    }


ADDRESSEE_SCHEMA: dict[str, Any] = addressee_schema(["host", "guest"])
"""The addressee's JSON for two candidates (read-only; see :func:`addressee_schema`)."""


def addressee_prompt(prose: str, candidates: Mapping[str, str]) -> tuple[PromptMessage, ...]:
    """Messages asking which of ``candidates`` ({id: name}, the host first) ``prose`` addresses.

    ``prose`` is the person's prose as written; its OOC notes are removed here.
    """
    names = list(candidates.values())
    listed = "; ".join(f"{bot_id} is {name}" for bot_id, name in candidates.items())
    system = (
        f"Characters share a scene ({listed}); {names[0]} is the host. Decide which of them "
        f"the person's words are addressed to, that is, who should answer. Reply with JSON "
        f'only: {{"addressee": "ID"}} with the id of that character. When it is unclear, '
        f"choose the host."
    )
    return (PromptMessage("system", system), PromptMessage("user", strip_ooc(prose)))


def validate_addressee(raw: object, candidates: Mapping[str, str]) -> str:
    """Read the choice: a candidate's id, full or first name, or the role "host" / "guest".

    "host" is the first candidate and "guest" the second; a name two
    candidates answer to, or anything else, is the first candidate.
    """
    ids = list(candidates)
    default = ids[0] if ids else ""
    data = load_json(raw)
    value = (
        field(data, "addressee", "answer", "speaker", "name", "id")
        if isinstance(data, dict)
        else data
    )
    if not isinstance(value, str):
        return default
    word = collapse(value).strip(" .!\"'").casefold()
    roles = {"host": ids[:1], "guest": ids[1:2]}
    chosen = roles.get(word) or [
        bot_id
        for bot_id, name in candidates.items()
        if word == bot_id.casefold() or word in (f.casefold() for f in name_forms(name))
    ]
    return chosen[0] if len(chosen) == 1 else default
