"""The addressee classifier: which of two bots the user spoke to.

Called only when the rules answer ``"ask"`` (both named, or someone
addressed without a name), before the first token. Safe default: the host.
"""

from __future__ import annotations

from typing import Any, Literal

from .._messages import PromptMessage
from .._names import name_forms
from .._parse import strip_ooc
from .._text import collapse
from ._coerce import field, load_json

AddresseeChoice = Literal["host", "guest"]
ADDRESSEE_DEFAULT: AddresseeChoice = "host"

ADDRESSEE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"addressee": {"type": "string", "enum": ["host", "guest"]}},
    "required": ["addressee"],
    "additionalProperties": False,
}
"""The JSON the addressee classifier is asked for (read-only)."""


def addressee_prompt(prose: str, host_name: str, guest_name: str) -> tuple[PromptMessage, ...]:
    """Messages asking whether ``prose`` is addressed to the host or to the guest.

    ``prose`` is the person's prose as written; its OOC notes are removed here.
    """
    system = (
        f"Two characters share a scene: {host_name} (the host) and {guest_name} (the guest). "
        f"Decide which of them the person's words are addressed to, that is, who should "
        f"answer. Reply with JSON only: "
        f'{{"addressee": "host"}} for {host_name} or {{"addressee": "guest"}} for {guest_name}. '
        f"When it is unclear, choose the host."
    )
    return (PromptMessage("system", system), PromptMessage("user", strip_ooc(prose)))


def _names(value: str, name: str) -> bool:
    return bool(name) and value in (form.casefold() for form in name_forms(name))


def validate_addressee(raw: object, host_name: str = "", guest_name: str = "") -> AddresseeChoice:
    """Read the choice: "host" or "guest", or either bot's name; anything else is the host."""
    data = load_json(raw)
    value = (
        field(data, "addressee", "answer", "speaker", "name") if isinstance(data, dict) else data
    )
    if not isinstance(value, str):
        return ADDRESSEE_DEFAULT
    word = collapse(value).strip(" .!\"'").casefold()
    is_host = word == "host" or _names(word, host_name)
    is_guest = word == "guest" or _names(word, guest_name)
    return "guest" if is_guest and not is_host else ADDRESSEE_DEFAULT
