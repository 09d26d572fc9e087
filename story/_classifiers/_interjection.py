"""The interjection classifier: which silent witness, if any, speaks up.

Called after a primary beat that completed (not cancelled, not errored, not
empty), once per turn whatever the cast: one call ranks every silent
witness present. The first of the ranking streams an interjection beat.
Safe default: nobody.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from attrs import frozen

from protocol import Bot, Edge

from .._messages import PromptMessage
from .._names import name_forms
from .._parse import strip_ooc
from .._relations import describe_edge
from .._text import collapse, shorten
from ._coerce import as_bool, as_text, field, load_json

MAX_REASON_CHARS = 300
_NOBODY = frozenset({"", "nobody", "none", "no one", "noone", "null", "nil", "-"})


@frozen
class InterjectionDecision:
    """The silent witnesses who would speak up, most fitting first (empty: nobody), and why."""

    ranking: tuple[str, ...] = ()
    """Bot ids, each a silent witness present, at most once."""
    reason: str = ""

    @property
    def interject(self) -> bool:
        """Whether anyone speaks up."""
        return bool(self.ranking)


INTERJECTION_DEFAULT = InterjectionDecision()


@frozen
class Witness:
    """A silent witness as the ranking sees it: who, and how it stands toward the two."""

    bot: Bot
    edge_to_addressee: Edge | None
    edge_to_you: Edge | None


def interjection_schema(witness_ids: Sequence[str]) -> dict[str, Any]:
    """The JSON the ranking is asked for: the ids of those who would speak, best first."""
    return {
        "type": "object",
        "properties": {
            "ranking": {
                "type": "array",
                "items": {"type": "string", "enum": list(witness_ids)},
                "maxItems": len(witness_ids),
            },
            "reason": {"type": "string", "maxLength": MAX_REASON_CHARS},
        },
        "required": ["ranking", "reason"],
        "additionalProperties": False,
    }


INTERJECTION_SCHEMA: dict[str, Any] = interjection_schema(["witness"])
"""The ranking's JSON for one witness id (read-only; see :func:`interjection_schema`)."""


def interjection_prompt(
    witnesses: Sequence[Witness],
    addressee_name: str,
    you_name: str,
    you_said: str,
    addressee_said: str,
) -> tuple[PromptMessage, ...]:
    """Messages asking which of ``witnesses``, who were not addressed, would speak up now.

    ``you_said`` is the person's prose; any OOC note left in it is removed here.
    """
    ids = ", ".join(f"{w.bot.id} ({w.bot.name})" for w in witnesses)
    system = (
        f"You direct a scene. {you_name} spoke to {addressee_name}, who has just answered. "
        f"Others are present but were not addressed: {ids}. Decide which of them would "
        f"speak up right now: only with a real reason, such as being mentioned, feeling "
        f"strongly, knowing something that matters, or it being very much in character. "
        f"Most of the time nobody does. Reply with JSON only, in this form:\n"
        f'{{"ranking": [], "reason": "one short sentence"}}\n'
        f"ranking: the ids of those who would speak up, the most fitting first; "
        f"empty when nobody would."
    )
    people = "".join(
        f"{w.bot.name} is present but was not addressed. "
        f"{w.bot.name}: {shorten(collapse(w.bot.persona), 600) or '(no description)'}\n"
        f"{w.bot.name} toward {addressee_name}: {describe_edge(w.edge_to_addressee)}\n"
        f"{w.bot.name} toward {you_name}: {describe_edge(w.edge_to_you)}\n"
        for w in witnesses
    )
    user = (
        f"{people}\n"
        f"{you_name}: {shorten(collapse(strip_ooc(you_said)), 1200)}\n"
        f"{addressee_name}: {shorten(collapse(addressee_said), 1500)}"
    )
    return (PromptMessage("system", system), PromptMessage("user", user))


def _resolve(value: object, witnesses: Mapping[str, str]) -> str | None:
    if not isinstance(value, str):
        return None
    word = collapse(value).strip(" .!\"'").casefold()
    for bot_id, name in witnesses.items():
        if word == bot_id.casefold() or word in (f.casefold() for f in name_forms(name)):
            return bot_id
    return None


def validate_interjection(
    raw: object, witnesses: Mapping[str, str] | None = None
) -> InterjectionDecision:
    """Read the ranking: ids or names of the silent ``witnesses`` ({id: name}), best first.

    Unknown names and repeats are dropped; "nobody" or an empty ranking is
    nobody. A single ``speaker`` is a ranking of one, and with only one
    witness a clear yes (``interject``) names it. Anything else: nobody.
    """
    known = dict(witnesses or {})
    data = load_json(raw)
    if isinstance(data, Mapping):
        entries = field(data, "ranking", "speakers", "order")
        if entries is None:
            entries = field(data, "speaker", "witness", "who")
        reason = as_text(field(data, "reason", "why"), MAX_REASON_CHARS)
        yes = as_bool(field(data, "interject", "should_interject", "speak"))
    else:
        entries, reason, yes = data, "", as_bool(data)
    listed = isinstance(entries, list)
    if isinstance(entries, str):
        entries = [] if collapse(entries).casefold() in _NOBODY else [entries]
    ranking: list[str] = []
    for entry in entries if isinstance(entries, list) else ():
        bot_id = _resolve(entry, known)
        if bot_id is not None and bot_id not in ranking:
            ranking.append(bot_id)
    if not ranking and not listed and yes and len(known) == 1:
        ranking = list(known)
    return InterjectionDecision(tuple(ranking), reason)
