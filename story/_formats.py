"""What every importer of cards, lorebooks and chats shares: the error, the limits, raw JSON.

Files from other role-play front ends are the person's input: anything
wrong with one is their file's fault, never a bug of ours, so every reader
raises one error type, :class:`CardError`, whose ``code`` a caller can
hand on (as HTTP 400 ``{"error": code, "message": ...}``) and whose
message names the problem in words a person can act on.
"""

from __future__ import annotations

import json
import re
from typing import Final, Literal, TypeAlias

Json: TypeAlias = "bool | int | float | str | list[Json] | dict[str, Json] | None"
"""A JSON value as :func:`json.loads` gives it."""

JsonObject: TypeAlias = "dict[str, Json]"
"""A JSON object."""

MAX_IMPORT_BYTES: Final = 20 * 1024 * 1024
"""The largest file an import accepts (over it: ``too_large``, HTTP 413)."""

MAX_CHARX_UNPACKED: Final = 100 * 1024 * 1024
"""The most a CHARX zip may unpack to, all entries together."""

MAX_CHARX_ENTRIES: Final = 10_000
"""The most entries a CHARX zip may hold."""

_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]")
_SLASHED = re.compile(r"^/.+/[a-z]*$", re.DOTALL)

ErrorCode = Literal[
    "not_a_card",
    "no_card_chunk",
    "bad_png",
    "bad_base64",
    "bad_json",
    "bad_card",
    "no_name",
    "too_large",
    "bad_charx",
    "charx_too_large",
    "charx_path",
    "bad_lorebook",
    "bad_jsonl",
]
"""Why an imported file was refused."""


class CardError(ValueError):
    """An imported file that cannot be read: the person's file is at fault.

    ``code`` is one of :data:`ErrorCode`; the message says what was wrong
    and, where it helps, what is allowed.
    """

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code: ErrorCode = code
        self.message = message

    def __repr__(self) -> str:
        return f"CardError({self.code!r}, {self.message!r})"


def check_size(data: bytes) -> None:
    """Refuse ``data`` past :data:`MAX_IMPORT_BYTES` (``too_large``)."""
    if len(data) > MAX_IMPORT_BYTES:
        raise CardError(
            "too_large",
            f"the file is {len(data)} bytes; at most {MAX_IMPORT_BYTES} bytes (20 MiB) "
            "are accepted",
        )


def decode_text(data: bytes, what: str) -> str:
    """``data`` as UTF-8 text (a leading byte-order mark dropped), or ``bad_json``."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CardError("bad_json", f"{what} is not UTF-8 text (byte {exc.start})") from None
    return text.removeprefix("\ufeff")


def parse_json(text: str, what: str) -> Json:
    """``text`` parsed as JSON, or ``bad_json`` naming ``what`` and where it broke."""
    try:
        value: Json = json.loads(text)
        if _SURROGATE.search(text):
            # Paired escapes decode to one character; a lone one cannot be
            # written as UTF-8, so it would break every export later.
            json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise CardError(
            "bad_json", f"{what} holds a lone UTF-16 surrogate escape (\\ud800 to \\udfff)"
        ) from None
    except json.JSONDecodeError as exc:
        raise CardError(
            "bad_json",
            f"{what} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
        ) from None
    except RecursionError:
        raise CardError("bad_json", f"{what} nests too deeply to read") from None
    return value


def parse_object(text: str, what: str) -> JsonObject:
    """``text`` parsed as a JSON object (``bad_json`` if it is anything else)."""
    value = parse_json(text, what)
    if not isinstance(value, dict):
        raise CardError("bad_json", f"{what} must be a JSON object, not {kind_of(value)}")
    return value


def dump_json(value: Json) -> str:
    """``value`` as compact JSON text, non-ASCII kept as is, key order kept."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def load_copy(text: str) -> JsonObject:
    """A fresh JSON object from text this package wrote with :func:`dump_json`."""
    value: Json = json.loads(text)
    if not isinstance(value, dict):
        raise TypeError("stored JSON is not an object")
    return value


def kind_of(value: Json) -> str:
    """How to name ``value``'s JSON type in a message: "a number", "text", ..."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a list"
    return "an object"


def text_of(obj: JsonObject, key: str, where: str, code: ErrorCode = "bad_card") -> str:
    """``obj[key]`` as text: absent or null is "", anything but text is ``code``."""
    value = obj.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise CardError(code, f"{where}{key} must be text, not {kind_of(value)}")
    return value


def texts_of(
    obj: JsonObject, key: str, where: str, code: ErrorCode = "bad_card", *, commas: bool = False
) -> tuple[str, ...]:
    """``obj[key]`` as a list of texts: absent or null is empty, a lone text is one item.

    With ``commas`` (lorebook keys), a lone text is a comma-separated list,
    as the V3 spec writes secondary keys, unless it is one ``/regex/``.
    """
    value = obj.get(key)
    if value is None:
        return ()
    if isinstance(value, str):
        if not commas or _SLASHED.match(value.strip()):
            return (value,) if value.strip() else ()
        return tuple(part.strip() for part in value.split(",") if part.strip())
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise CardError(code, f"{where}{key} must be a list of texts, not {kind_of(value)}")
    return tuple(v for v in value if isinstance(v, str))


def number_of(obj: JsonObject, key: str) -> float | None:
    """``obj[key]`` if it is a number (not a boolean), else None."""
    value = obj.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def flag_of(obj: JsonObject, key: str, default: bool) -> bool:
    """``obj[key]`` if it is true or false, else ``default``."""
    value = obj.get(key)
    return value if isinstance(value, bool) else default


def object_of(obj: JsonObject, key: str) -> JsonObject:
    """``obj[key]`` if it is an object, else an empty one."""
    value = obj.get(key)
    return value if isinstance(value, dict) else {}
