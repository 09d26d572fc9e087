"""One cattrs converter for the wire and the log, and the frame codec.

Decoding is strict about types (a string where an int belongs is an error,
not a conversion) and lenient about extra fields (ignored, as the protocol
says). Errors carry the protocol code and a message for a person.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import attrs
import cattrs
import cattrs.v
from cattrs.errors import ClassValidationError, ForbiddenExtraKeysError
from cattrs.preconf.json import make_converter

from . import events as ev
from ._client import CLIENT_TYPES, ClientMessage
from ._limits import MAX_CLIENT_ID, MAX_FRAME_BYTES
from ._server import SERVER_TYPES, ErrorCode, ServerMessage
from ._validators import FieldTooLarge


class ProtocolError(Exception):
    """The client sent something we cannot accept: their fault, answered with ``error``."""

    def __init__(self, code: ErrorCode, message: str, reply_to: str | None = None) -> None:
        super().__init__(message)
        self.code: ErrorCode = code
        self.message = message
        self.reply_to = reply_to


class EventPayloadError(ValueError):
    """An event payload is unknown or malformed; nothing was written."""


@attrs.frozen
class Envelope:
    """A decoded client frame: its message and the optional ``id`` to echo."""

    message: ClientMessage
    id: str | None = None

    @property
    def type(self) -> str:
        """The wire ``type`` of the message."""
        return TYPE_OF_CLIENT[type(self.message)]


TYPE_OF_CLIENT = {cls: name for name, cls in CLIENT_TYPES.items()}


def _strict(kind: type[Any], label: str) -> Any:
    def structure(value: Any, _type: Any) -> Any:
        # bool is an int in Python, never on our wire.
        if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
            raise TypeError(f"expected {label}")
        return value

    return structure


def _float(value: Any, _type: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError("expected a number")
    return float(value)


def _make() -> cattrs.Converter:
    conv = make_converter(detailed_validation=True)
    conv.register_structure_hook(str, _strict(str, "a string"))
    conv.register_structure_hook(int, _strict(int, "an integer"))
    conv.register_structure_hook(bool, _strict(bool, "true or false"))
    conv.register_structure_hook(float, _float)
    return conv


converter = _make()
"""The one converter: wire messages, shapes and event payloads."""


def _describe(exc: BaseException, reply_to: str | None) -> ProtocolError:
    too_large = _find(exc, FieldTooLarge)
    if too_large is not None:
        return ProtocolError("too_large", str(too_large), reply_to)
    if isinstance(exc, ClassValidationError | ForbiddenExtraKeysError):
        problems = cattrs.transform_error(exc, path="", format_exception=_explain)
        text = "; ".join(_tidy(p) for p in problems)
        return ProtocolError("bad_message", text or "the message is malformed", reply_to)
    return ProtocolError("bad_message", str(exc) or "the message is malformed", reply_to)


def _explain(exc: BaseException, _type: Any) -> str:
    if isinstance(exc, KeyError):
        return "required field missing"
    if isinstance(exc, TypeError | ValueError) and str(exc):
        return str(exc)
    return cattrs.v.format_exception(exc, _type)


def _tidy(problem: str) -> str:
    text, _, path = problem.rpartition(" @ ")
    path = path.lstrip("$.")
    return f"{path}: {text}" if path else text


def _find(exc: BaseException, kind: type[BaseException]) -> BaseException | None:
    if isinstance(exc, kind):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = _find(inner, kind)
            if found is not None:
                return found
    if exc.__cause__ is not None:
        return _find(exc.__cause__, kind)
    return None


def decode_client(frame: str | bytes) -> Envelope:
    """Decode one text frame into a client message, or raise :class:`ProtocolError`."""
    size = len(frame.encode() if isinstance(frame, str) else frame)
    if size > MAX_FRAME_BYTES:
        raise ProtocolError("too_large", f"the frame is {size} bytes; at most 64 KiB is allowed")
    try:
        data = json.loads(frame)
    except (ValueError, UnicodeDecodeError):
        raise ProtocolError("bad_json", "the frame is not valid JSON") from None
    if not isinstance(data, dict):
        raise ProtocolError("bad_json", "the frame is not a JSON object")
    reply_to = data.get("id")
    if reply_to is not None and not isinstance(reply_to, str):
        raise ProtocolError("bad_message", "id must be a string")
    if reply_to is not None and len(reply_to) > MAX_CLIENT_ID:
        raise ProtocolError(
            "too_large", f"id is {len(reply_to)} characters; at most {MAX_CLIENT_ID}"
        )
    kind = data.get("type")
    if not isinstance(kind, str):
        raise ProtocolError("bad_message", "type is missing or not a string", reply_to)
    cls = CLIENT_TYPES.get(kind)
    if cls is None:
        raise ProtocolError("unknown_type", f"unknown message type {kind!r}", reply_to)
    fields = {k: v for k, v in data.items() if k not in ("type", "id")}
    try:
        message = converter.structure(fields, cls)
    except Exception as exc:
        raise _describe(exc, reply_to) from None
    return Envelope(message=message, id=reply_to)


def encode_client(message: ClientMessage, id: str | None = None) -> str:
    """Encode a client message as a frame (for clients and tests)."""
    data: dict[str, Any] = {"type": TYPE_OF_CLIENT[type(message)]}
    if id is not None:
        data["id"] = id
    data.update(converter.unstructure(message))
    return json.dumps(data, ensure_ascii=False)


def to_wire(
    message: ServerMessage, reply_to: str | None = None, *, direct: bool = False
) -> dict[str, Any]:
    """A server message as the JSON object sent on the wire.

    ``direct`` marks the answer to a command: it then carries ``reply_to``.
    """
    data: dict[str, Any] = {"type": SERVER_TYPES[type(message)]}
    data.update(converter.unstructure(message))
    if data["type"] == "error" and data.get("chat_id") is None:
        data.pop("chat_id", None)  # only errors about a chat (llm_error) carry one
    if direct or data["type"] == "error":
        data["reply_to"] = reply_to
    return data


def encode_server(
    message: ServerMessage, reply_to: str | None = None, *, direct: bool = False
) -> str:
    """Encode a server message as a text frame."""
    return json.dumps(to_wire(message, reply_to, direct=direct), ensure_ascii=False)


def dump_event(event: ev.Event) -> tuple[str, str]:
    """An event payload as its ``kind`` and JSON text, for the log."""
    return ev.kind_of(event), json.dumps(converter.unstructure(event), ensure_ascii=False)


def load_event(kind: str, payload: str | Mapping[str, Any]) -> ev.Event:
    """Rebuild an event payload from its ``kind`` and JSON, or raise :class:`EventPayloadError`."""
    cls = ev.EVENT_KINDS.get(kind)
    if cls is None:
        raise EventPayloadError(f"unknown event kind {kind!r}")
    try:
        data = json.loads(payload) if isinstance(payload, str) else dict(payload)
        return converter.structure(data, cls)
    except Exception as exc:
        problem = _describe(exc, None)
        raise EventPayloadError(f"malformed {kind} payload: {problem.message}") from exc


def check_event(event: ev.Event) -> ev.Event:
    """Check that an event survives its own round trip, so a bad one is refused before writing."""
    kind, text = dump_event(event)
    return load_event(kind, text)
