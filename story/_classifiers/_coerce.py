"""Reading whatever a model returned, leniently and without ever raising.

Models wrap JSON in prose or code fences, quote their numbers, swap keys'
case, and sometimes return nothing useful at all. These functions take the
useful part or fall back to a default; the validators are built on them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence

from protocol import round_half_away

from .._names import name_forms
from .._text import collapse, shorten

_FENCE = re.compile(r"^```[\w-]*\s*|\s*```$")
_TRUE = frozenset({"true", "yes", "y", "1", "on"})
_FALSE = frozenset({"false", "no", "n", "0", "off", "", "none", "null"})
MAX_SCANNED = 50
"""List items a validator looks at before it stops reading."""


def load_json(raw: object) -> object:
    """``raw`` decoded if it is JSON text (fences and chatter around it tolerated), else itself.

    Text that holds no JSON comes back as that text, trimmed: a bare "guest"
    or "yes" is an answer too, and anything else falls to the validator's default.
    """
    if isinstance(raw, bytes | bytearray):
        raw = bytes(raw).decode("utf-8", errors="replace")
    if not isinstance(raw, str):
        return raw
    text = _FENCE.sub("", raw.strip())
    candidates = [text]
    for opener, closer in ("{}", "[]"):
        start, end = text.find(opener), text.rfind(closer)
        if 0 <= start < end:
            candidates.append(text[start : end + 1])
    for candidate in candidates:
        try:
            return json.loads(candidate)
        except (ValueError, RecursionError):
            continue
    return text


def _key(key: str) -> str:
    return re.sub(r"[\s-]+", "_", key.strip().casefold())


def field(obj: object, *names: str) -> object:
    """The first of ``names`` present in a mapping (case and separators ignored), else ``None``."""
    if not isinstance(obj, Mapping):
        return None
    for name in names:
        if name in obj:
            return obj[name]
    wanted = [_key(n) for n in names]
    found: dict[str, object] = {}
    for key, value in obj.items():
        if isinstance(key, str):
            found.setdefault(_key(key), value)
    for want in wanted:
        if want in found:
            return found[want]
    return None


def as_int(value: object, low: int, high: int, default: int) -> int:
    """An integer within ``low..high``: ints clamp, floats round (half away from zero),
    numeric strings are read; booleans, non-finite numbers and anything else give ``default``.
    """
    number: int | None = None
    if isinstance(value, bool):
        number = None
    elif isinstance(value, int):
        number = value
    elif isinstance(value, float):
        number = round_half_away(value)
    elif isinstance(value, str) and len(value) <= 100:
        text = value.strip()
        try:
            number = int(text)
        except ValueError:
            try:
                number = round_half_away(float(text))
            except ValueError:
                number = None
    if number is None:
        return default
    return max(low, min(high, number))


def as_bool(value: object, default: bool = False) -> bool:
    """A yes/no: booleans as they are, 1/0, and "true"/"yes"/"false"/"no"; else ``default``."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().strip(".!").casefold()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
    return default


def as_text(value: object, max_chars: int) -> str:
    """A string trimmed, its whitespace collapsed, cut to ``max_chars``; non-strings give ""."""
    if not isinstance(value, str):
        return ""
    return shorten(collapse(value), max_chars)


def as_items(value: object) -> list[object]:
    """The first items of a list (a single value counts as a list of one; ``None`` as none)."""
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return list(value[:MAX_SCANNED])
    return [value]


def as_texts(value: object, max_items: int, max_chars: int) -> tuple[str, ...]:
    """At most ``max_items`` distinct, non-empty strings of at most ``max_chars`` each.

    Duplicates are judged ignoring case and spacing; a lone string counts as one item.
    """
    texts: list[str] = []
    seen: set[str] = set()
    for item in as_items(value):
        text = as_text(item, max_chars)
        if text and text.casefold() not in seen:
            seen.add(text.casefold())
            texts.append(text)
        if len(texts) >= max_items:
            break
    return tuple(texts)


def resolve(name: object, people: Mapping[str, str]) -> str | None:
    """The id in ``people`` (id → name) that ``name`` means: an id, a name, or a first name."""
    if not isinstance(name, str):
        return None
    wanted = collapse(name).strip(" .\"'").casefold()
    if not wanted:
        return None
    for person_id in people:
        if person_id.casefold() == wanted:
            return person_id
    for person_id, person_name in people.items():
        if wanted in (form.casefold() for form in name_forms(person_name)):
            return person_id
    return None


def render_lines(lines: Iterable[str], max_lines: int, max_chars: int) -> str:
    """The last ``max_lines`` lines, each cut to ``max_chars``, for a classifier prompt."""
    kept: Sequence[str] = [shorten(collapse(line), max_chars) for line in lines]
    kept = [line for line in kept if line][-max_lines:]
    return "\n".join(kept) if kept else "(nothing yet)"
