"""SillyTavern chats: JSON Lines, a header line then one message a line.

The header names the person and the character (``user_name``,
``character_name``, ``create_date``, ``chat_metadata``). Each message has
``name``, ``is_user``, ``mes`` and ``send_date``; where a message has
alternatives, ``swipes`` lists them all and ``swipe_id`` says which one
``mes`` is. troupe writes its own event data under a message's ``extra``,
where SillyTavern keeps what it does not know. Lines read from a file are
written back exactly as they were.
"""

from __future__ import annotations

from collections.abc import Iterable

from attrs import field, frozen

from ._formats import (
    CardError,
    Json,
    JsonObject,
    check_size,
    decode_text,
    dump_json,
    flag_of,
    kind_of,
    load_copy,
    parse_json,
)


@frozen
class ChatLine:
    """One message of a SillyTavern chat.

    ``swipes`` is empty when the message has no alternatives; otherwise it
    holds every alternative and ``text`` is ``swipes[swipe_id]``. ``extra``
    is the message's ``extra`` object as JSON text. ``source`` is the line
    as read (empty for a line built here); it is not part of equality, so
    a chat read back equals the chat written.
    """

    name: str
    is_user: bool
    text: str
    send_date: str = ""
    swipes: tuple[str, ...] = ()
    swipe_id: int = 0
    is_system: bool = False
    extra: str = "{}"
    source: str = field(default="", eq=False)

    def extra_object(self) -> JsonObject:
        """The message's ``extra`` object (a fresh copy)."""
        return load_copy(self.extra)


@frozen
class StChat:
    """A SillyTavern chat: who it is between, and its messages, oldest first."""

    user_name: str
    character_name: str
    lines: tuple[ChatLine, ...]
    create_date: str = ""
    header: str = field(default="", eq=False)


def read_st_chat(data: bytes) -> StChat:
    """A chat from SillyTavern JSONL bytes.

    Raises ``too_large`` past the import limit and ``bad_jsonl`` naming the
    first line that is not a JSON object or not a message.
    """
    check_size(data)
    rows: list[tuple[int, JsonObject, str]] = []
    # Only a newline ends a line: str.splitlines would also cut at U+2028,
    # which JSON allows raw inside a string.
    for number, raw_line in enumerate(decode_text(data, "the chat").split("\n"), start=1):
        line = raw_line.removesuffix("\r")
        if not line.strip():
            continue
        try:
            value = parse_json(line, f"line {number}")
        except CardError as exc:
            raise CardError("bad_jsonl", f"the chat's {exc.message}") from None
        if not isinstance(value, dict):
            raise CardError(
                "bad_jsonl",
                f"the chat's line {number} must be a JSON object, not {kind_of(value)}",
            )
        rows.append((number, value, line))
    if not rows:
        raise CardError("bad_jsonl", "the chat is empty: not even a header line")
    header: JsonObject = {}
    header_text = ""
    if "mes" not in rows[0][1]:
        _, header, header_text = rows.pop(0)
    return StChat(
        user_name=_text(header.get("user_name")),
        character_name=_text(header.get("character_name")),
        create_date=_text(header.get("create_date")),
        lines=tuple(_line(number, obj, text) for number, obj, text in rows),
        header=header_text,
    )


def build_st_chat(
    user_name: str, character_name: str, lines: Iterable[ChatLine], create_date: str = ""
) -> StChat:
    """A chat to write, from its people and its messages."""
    return StChat(user_name, character_name, tuple(lines), create_date)


def write_st_chat(chat: StChat) -> bytes:
    """The chat as SillyTavern JSONL: the header line, then one message a line."""
    if chat.header:
        header = chat.header
    else:
        head: JsonObject = {
            "user_name": chat.user_name,
            "character_name": chat.character_name,
            "create_date": chat.create_date,
            "chat_metadata": {},
        }
        header = dump_json(head)
    out = [header]
    out.extend(line.source or dump_json(line_json(line)) for line in chat.lines)
    return ("\n".join(out) + "\n").encode("utf-8")


def line_json(line: ChatLine) -> JsonObject:
    """The JSON object of one message, as SillyTavern writes it."""
    if line.source:
        return load_copy(line.source)
    obj: JsonObject = {
        "name": line.name,
        "is_user": line.is_user,
        "is_system": line.is_system,
        "send_date": line.send_date,
        "mes": line.text,
        "extra": line.extra_object(),
    }
    if line.swipes:
        obj["swipe_id"] = line.swipe_id
        swipes: list[Json] = list(line.swipes)
        obj["swipes"] = swipes
    return obj


def chat_transcript(chat: StChat) -> str:
    """A readable transcript of the chat: one paragraph per message, the speaker in bold."""
    parts = [f"# {chat.character_name or 'Chat'}"]
    parts.extend(f"**{line.name}:** {line.text}" for line in chat.lines if not line.is_system)
    return "\n\n".join(parts) + "\n"


def _text(value: Json) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    return dump_json(value)


def _line(number: int, obj: JsonObject, source: str) -> ChatLine:
    where = f"the chat's line {number}"
    mes = obj.get("mes")
    if not isinstance(mes, str):
        raise CardError("bad_jsonl", f"{where}: mes must be text, not {kind_of(mes)}")
    name = obj.get("name", "")
    if not isinstance(name, str):
        raise CardError("bad_jsonl", f"{where}: name must be text, not {kind_of(name)}")
    raw_swipes = obj.get("swipes")
    swipes: tuple[str, ...] = ()
    if isinstance(raw_swipes, list) and raw_swipes:
        if not all(isinstance(s, str) for s in raw_swipes):
            raise CardError("bad_jsonl", f"{where}: swipes must be a list of texts")
        swipes = tuple(s for s in raw_swipes if isinstance(s, str))
    chosen = obj.get("swipe_id")
    swipe_id = chosen if isinstance(chosen, int) and not isinstance(chosen, bool) else 0
    if swipes and not 0 <= swipe_id < len(swipes):
        swipe_id = 0
    extra = obj.get("extra")
    return ChatLine(
        name=name,
        is_user=flag_of(obj, "is_user", False),
        text=mes,
        send_date=_text(obj.get("send_date")),
        swipes=swipes,
        swipe_id=swipe_id,
        is_system=flag_of(obj, "is_system", False),
        extra=dump_json(extra if isinstance(extra, dict) else {}),
        source=source,
    )
