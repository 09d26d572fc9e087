"""One cattrs converter for the wire and the log, and the frame codec.

Decoding is strict about types (a string where an int belongs is an error,
not a conversion) and lenient about extra fields (ignored, as the protocol
says). Every integer fits SQLite's 64 bits, every string can be written as
UTF-8, objects come from JSON objects and lists from JSON arrays, and a frame
nests at most ``MAX_DEPTH`` deep: whatever a client sends, decoding either
returns a message the rest of the server can store and send back, or raises
:class:`ProtocolError`. Errors carry the protocol code and a message for a
person.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from types import UnionType
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

import attrs
import cattrs
import cattrs.v
from cattrs.cols import homogenous_tuple_structure_factory, is_sequence, list_structure_factory
from cattrs.errors import ClassValidationError, ForbiddenExtraKeysError
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override
from cattrs.preconf.json import make_converter

from . import events as ev
from ._client import (
    CLIENT_ALIASES,
    CLIENT_TYPES,
    Cancel,
    ClientMessage,
    CreateChat,
    CreateWorldEvent,
    SendTurn,
)
from ._errors import ProtocolError
from ._limits import MAX_CLIENT_ID, MAX_DEPTH, MAX_FRAME_BYTES, MAX_INT, MIN_INT
from ._server import (
    SERVER_NAMES,
    SERVER_TYPES,
    BeatStarted,
    ChatState,
    MemoryNote,
    RewindPreviewReply,
    ServerMessage,
    UserTurn,
)
from ._shapes import Artifacts, Bot, Chat, Turn
from ._validators import FieldInvalid, FieldTooLarge, is_text, limits_apply, stored_read


class EventPayloadError(ValueError):
    """An event payload is unknown or malformed; nothing was written."""


@attrs.frozen
class Envelope:
    """A decoded client frame: its message, the optional ``id`` to echo, and the optional
    ``command_id`` that makes a writing command safe to retry (see docs/protocol.md)."""

    message: ClientMessage
    id: str | None = None
    command_id: str | None = None

    @property
    def type(self) -> str:
        """The wire ``type`` of the message."""
        return TYPE_OF_CLIENT[type(self.message)]


TYPE_OF_CLIENT = {cls: name for name, cls in CLIENT_TYPES.items()}


def _boolean(value: Any, _type: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError("expected true or false")
    return value


def _float(value: Any, _type: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError("expected a number")
    return float(value)


def _text(value: Any, _type: Any) -> str:
    if not isinstance(value, str):
        raise TypeError("expected a string")
    if not is_text(value):
        # A lone surrogate (JSON "\ud800") cannot be stored or sent back as UTF-8.
        raise ValueError("expected text that is valid Unicode (it holds a lone surrogate)")
    return value


def _integer(value: Any, _type: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool):  # a bool is an int in Python only
        raise TypeError("expected an integer")
    if not MIN_INT <= value <= MAX_INT and limits_apply():
        raise ValueError(f"expected a 64-bit integer, from {MIN_INT} to {MAX_INT}")
    return value


def _object(cl: Any, conv: cattrs.Converter) -> Any:
    inner = make_dict_structure_fn(cl, conv)

    def structure(value: Any, type_: Any) -> Any:
        # Without this, any value with an ``in`` (a list, a string) passes as an empty object.
        if not isinstance(value, Mapping):
            raise TypeError("expected an object")
        return inner(value, type_)

    return structure


def _array(type_: Any, conv: cattrs.Converter) -> Any:
    if getattr(type_, "__origin__", None) is tuple:
        inner = homogenous_tuple_structure_factory(type_, conv)
    else:
        inner = list_structure_factory(type_, conv)

    def structure(value: Any, hint: Any) -> Any:
        # Without this, a string or an object would be read as a list of its characters or keys.
        if not isinstance(value, list | tuple):
            raise TypeError("expected a list")
        return inner(value, hint)

    return structure


def _given_artifacts(conv: cattrs.Converter) -> Any:
    def structure(value: Any, _type: Any) -> Artifacts:
        artifacts = conv.structure(value, Artifacts)
        if artifacts.count == 0:
            raise FieldInvalid(
                "name at least one knowledge fact, relationship change or acquired object,"
                " or leave artifacts out"
            )
        return artifacts

    return structure


def _make() -> cattrs.Converter:
    conv = make_converter(detailed_validation=True)
    conv.register_structure_hook(str, _text)
    conv.register_structure_hook(int, _integer)
    conv.register_structure_hook(bool, _boolean)
    conv.register_structure_hook(float, _float)
    # Only the statistics answer holds free-form values; they are read as they come.
    conv.register_structure_hook_func(lambda type_: type_ is object, lambda value, _type: value)
    conv.register_structure_hook_factory(attrs.has, lambda cl: _object(cl, conv))
    conv.register_structure_hook_factory(is_sequence, lambda tp: _array(tp, conv))
    # ``artifacts`` left out means none; given, it must name something.
    conv.register_structure_hook(
        CreateWorldEvent,
        make_dict_structure_fn(
            CreateWorldEvent, conv, artifacts=override(struct_hook=_given_artifacts(conv))
        ),
    )
    conv.register_unstructure_hook(
        CreateWorldEvent,
        make_dict_unstructure_fn(CreateWorldEvent, conv, artifacts=override(omit_if_default=True)),
    )
    # The additions (casts, presence, cards) are left out where they say nothing, so a
    # frame or a payload of before them reads and writes back byte for byte.
    for cls, names in _ADDITIONS.items():
        # Typed loosely on purpose: the keywords are the class's field names, which the
        # function's own signature cannot know.
        omitted: dict[str, Any] = {name: override(omit_if_default=True) for name in names}
        conv.register_unstructure_hook(cls, make_dict_unstructure_fn(cls, conv, **omitted))
    return conv


_ADDITIONS: dict[type, tuple[str, ...]] = {
    Chat: ("cast", "present", "muted", "people"),
    Bot: ("card", "avatar_url"),
    CreateChat: (
        "host_bot_id",
        "guest_bot_id",
        "location",
        "title",
        "cast",
        "greeting",
        "continue_from",
    ),
    # Before the shapes that hold turns: their hooks are made with the turn's own.
    Turn: ("alternatives", "alternative", "alternative_ids"),
    ChatState: ("has_older", "lorebooks", "author_note", "queue", "settings"),
    UserTurn: ("speaker_id",),
    BeatStarted: ("continues", "offset"),
    SendTurn: ("queue",),
    Cancel: ("queued",),
    RewindPreviewReply: ("summary",),
    ev.ChatCreated: ("cast", "continue_from"),
    **{
        cls: ("present",)
        for cls in (
            ev.AssistantTurnStarted,
            ev.AssistantTurn,
            ev.MemoryWritten,
            ev.WorldEventCreated,
            ev.WorldEventStarted,
            ev.WorldEventCompleted,
            ev.WorldEventCancelled,
        )
    },
    ev.UserTurn: ("present", "person_id"),
    ev.UserTurnEdit: ("present", "person_id"),
}
"""Fields added for casts and presence (and for steering: a chat's books and author's note),
written only when they hold something."""
"""Fields added for casts, presence and a chat's settings, written only when they hold
something (a chat at the backend's defaults sends no ``settings``)."""


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


def _parse(frame: str | bytes) -> Any:
    try:
        return json.loads(frame)
    except RecursionError:
        raise ProtocolError(
            "bad_json", f"the frame nests too deeply; at most {MAX_DEPTH} levels are allowed"
        ) from None
    except (ValueError, UnicodeDecodeError):
        raise ProtocolError("bad_json", "the frame is not valid JSON") from None


def _depth(data: Any) -> int:
    """How deeply arrays and objects nest in ``data``, counted without recursion."""
    deepest = 0
    stack = [(data, 1)]
    while stack:
        value, level = stack.pop()
        if isinstance(value, dict):
            children = list(value.values())
        elif isinstance(value, list):
            children = value
        else:
            continue
        deepest = max(deepest, level)
        if level > MAX_DEPTH:
            break
        stack.extend((child, level + 1) for child in children)
    return deepest


def _usable_id(value: Any) -> bool:
    return isinstance(value, str) and len(value) <= MAX_CLIENT_ID and is_text(value)


def peek_id(frame: str | bytes) -> str | None:
    """The ``id`` of a frame refused before decoding (too large, too fast), if it has a usable one.

    Usable means what :func:`decode_client` would echo: a string of at most 64
    characters that can be sent back as UTF-8.
    """
    try:
        data = _parse(frame)
    except ProtocolError:
        return None
    value = data.get("id") if isinstance(data, dict) else None
    return value if _usable_id(value) else None


def decode_client(frame: str | bytes) -> Envelope:
    """Decode one text frame into a client message, or raise :class:`ProtocolError`."""
    size = len(frame.encode("utf-8", "surrogatepass") if isinstance(frame, str) else frame)
    if size > MAX_FRAME_BYTES:
        raise ProtocolError("too_large", f"the frame is {size} bytes; at most 64 KiB is allowed")
    data = _parse(frame)
    if not isinstance(data, dict):
        raise ProtocolError("bad_json", "the frame is not a JSON object")
    reply_to = data.get("id")
    if reply_to is not None and not isinstance(reply_to, str):
        raise ProtocolError("bad_message", "id must be a string")
    if reply_to is not None and len(reply_to) > MAX_CLIENT_ID:
        raise ProtocolError(
            "too_large", f"id is {len(reply_to)} characters; at most {MAX_CLIENT_ID}"
        )
    if reply_to is not None and not is_text(reply_to):
        # Not echoed: it could not be sent back.
        raise ProtocolError("bad_message", "id must be valid Unicode (it holds a lone surrogate)")
    if _depth(data) > MAX_DEPTH:
        raise ProtocolError(
            "bad_json",
            f"the frame nests too deeply; at most {MAX_DEPTH} levels are allowed",
            reply_to,
        )
    kind = data.get("type")
    if not isinstance(kind, str):
        raise ProtocolError("bad_message", "type is missing or not a string", reply_to)
    cls = CLIENT_TYPES.get(kind) or CLIENT_ALIASES.get(kind)
    if cls is None:
        raise ProtocolError("unknown_type", f"unknown message type {kind!r}", reply_to)
    command_id = _command_id(data.get("command_id"), reply_to)
    fields = {k: v for k, v in data.items() if k not in ("type", "id", "command_id")}
    try:
        message = converter.structure(fields, cls)
    except Exception as exc:
        raise _describe(exc, reply_to) from None
    return Envelope(message=message, id=reply_to, command_id=command_id)


def _command_id(value: Any, reply_to: str | None) -> str | None:
    """The frame's ``command_id``, checked: 1 to 64 characters of text, or absent.

    A bad one is ``invalid`` (not ``bad_message``): the command is well formed,
    but cannot be made safe to retry, so it is not run at all.
    """
    if value is None:
        return None
    if not isinstance(value, str):
        raise ProtocolError("invalid", "command_id must be a string", reply_to)
    if not 1 <= len(value) <= MAX_CLIENT_ID:
        raise ProtocolError(
            "invalid",
            f"command_id is {len(value)} characters; it takes 1 to {MAX_CLIENT_ID}",
            reply_to,
        )
    if not is_text(value):
        raise ProtocolError(
            "invalid", "command_id must be valid Unicode (it holds a lone surrogate)", reply_to
        )
    return value


def encode_client(
    message: ClientMessage, id: str | None = None, *, command_id: str | None = None
) -> str:
    """Encode a client message as a frame (for clients and tests)."""
    data: dict[str, Any] = {"type": TYPE_OF_CLIENT[type(message)]}
    if id is not None:
        data["id"] = id
    if command_id is not None:
        data["command_id"] = command_id
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


class ServerFrameError(ValueError):
    """A server frame a client cannot read: not JSON, an unknown ``type``, or malformed."""


@attrs.frozen
class ServerFrame:
    """A decoded server frame: its message, and ``reply_to`` when it answers a command."""

    message: ServerMessage
    reply_to: str | None = None
    direct: bool = False
    """Whether the frame carried ``reply_to`` (a direct answer, or an error)."""


def server_class(data: Mapping[str, Any]) -> type[ServerMessage] | None:
    """The class of a server frame's JSON object, by its ``type``, or ``None`` if unknown.

    ``memory`` names two shapes: with a ``chat_id`` of its own it is the chat
    message (also named ``memory_note``), without one the answer to ``pin_memory``.
    """
    kind = data.get("type")
    if kind == "memory" and data.get("chat_id") is not None:
        return MemoryNote
    return SERVER_NAMES.get(kind) if isinstance(kind, str) else None


def decode_server(frame: str | bytes) -> ServerFrame:
    """Read a server frame (for clients and tests), or raise :class:`ServerFrameError`.

    Every name of :data:`SERVER_NAMES` is read, and the names the server sends;
    ``encode_server(f.message, f.reply_to, direct=f.direct)`` gives the frame back.
    """
    try:
        data = json.loads(frame)
    except (ValueError, RecursionError):
        raise ServerFrameError("the frame is not valid JSON") from None
    if not isinstance(data, dict):
        raise ServerFrameError("the frame is not a JSON object")
    cls = server_class(data)
    if cls is None:
        raise ServerFrameError(f"unknown server message type {data.get('type')!r}")
    fields = {k: v for k, v in data.items() if k not in ("type", "reply_to")}
    try:
        message = converter.structure(fields, cls)
    except Exception as exc:
        raise ServerFrameError(
            f"malformed {data['type']}: {_describe(exc, None).message}"
        ) from exc
    return ServerFrame(message, data.get("reply_to"), "reply_to" in data)


def dump_event(event: ev.Event) -> tuple[str, str]:
    """An event payload as its ``kind`` and JSON text, for the log."""
    return ev.kind_of(event), _to_json(converter.unstructure(event))


_to_json = json.JSONEncoder(ensure_ascii=False).encode
"""``json.dumps(value, ensure_ascii=False)``, the same text, without making an encoder a call."""


T = TypeVar("T")


def load_stored(data: Any, cls: type[T]) -> T:
    """Rebuild a stored value (JSON data) as ``cls``: its types are checked, the limits are not.

    The limits are for what comes in; what the log or a projection holds was
    accepted under the limits of its day, and must read back whatever they were.
    """
    return stored_read(lambda: converter.structure(data, cls))


def load_event(kind: str, payload: str | Mapping[str, Any]) -> ev.Event:
    """Rebuild an event payload from the log, or raise :class:`EventPayloadError`.

    Like :func:`load_stored`, types are checked and the limits are not: a log
    written by an earlier release, under other limits, replays.
    """
    return stored_read(lambda: _load(kind, payload))


def _load(kind: str, payload: str | Mapping[str, Any]) -> ev.Event:
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
    """Check that an event survives its own round trip, limits included, before it is written."""
    kind, text = dump_event(event)
    return _load(kind, text)


def checked_payload(event: ev.Event) -> tuple[ev.Event, str, str]:
    """:func:`check_event`, with the ``kind`` and JSON text it checked: what the log keeps.

    The text is the one that loaded back, so it need not be encoded again. An
    event whose every field already holds what decoding would give back (see
    :func:`loads_back`) is kept as it is; any other goes through the full
    round trip, which returns the decoded copy or refuses it.
    """
    kind, text = dump_event(event)
    if loads_back(event):
        return event, kind, text
    return _load(kind, text), kind, text


def loads_back(value: Any) -> bool:
    """Whether an event (or shape) is surely what decoding its own payload would give back.

    True only when every field holds exactly its declared type (a ``str``
    that is valid Unicode, an ``int`` in 64 bits, a ``tuple`` of such, a
    nested class of its own...), and the class's validators pass with the
    limits applying: then decoding would rebuild an equal value, and the
    full decode, the slow part of appending, can be skipped. False means
    "not sure", never "bad": the caller then decodes, which decides.
    """
    check = _checker(type(value))
    if check is None:
        return False
    try:
        return check(value)
    except Exception:
        return False  # a validator refused: the full decode says why


_Check = Callable[[Any], bool]
_CHECKERS: dict[Any, _Check | None] = {}


def _checker(type_: Any) -> _Check | None:
    """A function telling whether a value is exactly of ``type_``; None when it cannot tell."""
    try:
        return _CHECKERS[type_]
    except KeyError:
        pass
    except TypeError:  # an unhashable type hint
        return None
    _CHECKERS[type_] = None  # a class that holds itself is not told apart: the full decode
    check = _make_checker(type_)
    _CHECKERS[type_] = check
    return check


def _make_checker(type_: Any) -> _Check | None:
    if type_ is str:
        return lambda v: type(v) is str and is_text(v)
    if type_ is bool:
        return lambda v: type(v) is bool
    if type_ is int:
        return lambda v: type(v) is int and MIN_INT <= v <= MAX_INT
    if type_ is float:
        # An int would decode as a float: equal, but not the same; let the decode have it.
        return lambda v: type(v) is float
    origin, args = get_origin(type_), get_args(type_)
    if origin is Literal and all(type(a) is str for a in args):
        allowed = frozenset(args)
        return lambda v: type(v) is str and v in allowed
    if origin in (Union, UnionType):
        inner = [_checker(a) for a in args if a is not type(None)]
        if len(inner) != 1 or inner[0] is None or len(args) != 2:
            return None
        one = inner[0]
        return lambda v: v is None or one(v)
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        item = _checker(args[0])
        if item is None:
            return None
        return lambda v: type(v) is tuple and all(item(x) for x in v)
    if isinstance(type_, type) and attrs.has(type_):
        return _attrs_checker(type_)
    return None


def _attrs_checker(cls: type) -> _Check | None:
    if hasattr(cls, "__attrs_post_init__"):
        return None  # it checks more than its fields: the full decode runs it
    fields = attrs.fields(attrs.resolve_types(cls))
    if any(f.alias != f.name or not f.init for f in fields):
        return None
    checks: list[tuple[str, _Check]] = []
    for f in fields:
        check = _checker(f.type)
        if check is None:
            return None
        checks.append((f.name, check))
    # What attrs.validate runs, looked up once.
    validators: list[tuple[Any, Any]] = [(f, f.validator) for f in fields if f.validator]

    def check_attrs(v: Any) -> bool:
        if type(v) is not cls or not limits_apply():
            return False
        for name, check in checks:
            if not check(getattr(v, name)):
                return False
        for field, validator in validators:
            validator(v, field, getattr(v, field.name))  # raises when the limits refuse it
        return True

    return check_attrs
