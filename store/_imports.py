"""Writing what was imported: a card as a bot, a lorebook, a SillyTavern chat as a chat.

Each import is one transaction: its events, and the avatar image they name,
commit together or not at all, so a refused import leaves nothing behind.
The files themselves were read (and refused, when broken) by :mod:`story`
before anything here runs.
"""

from __future__ import annotations

import hashlib
import re
from typing import Literal

from attrs import frozen

from protocol import MAX_CAST, MAX_GREETING, MAX_NAME, MAX_PERSONA, MAX_PROSE, MAX_TITLE, YOU_ID
from protocol import events as ev
from story import ImportedCard, ImportedChat, ImportedLorebook, Lorebook, StChat, parse_prose

from ._errors import Invalid
from ._store import Store

_IMAGES = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)


def image_type(data: bytes) -> str | None:
    """The media type of an image by its first bytes: PNG, JPEG, GIF or WebP; else None."""
    for magic, kind in _IMAGES:
        if data.startswith(magic):
            return kind
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def put_blob(s: Store, data: bytes, media_type: str) -> str:
    """Keep ``data`` beside the log (once, however often it is named); returns its sha256.

    Call it inside the transaction that appends the event naming the blob.
    """
    digest = hashlib.sha256(data).hexdigest()
    with s.transaction():
        s.conn.execute(
            "INSERT INTO blobs(sha256, media_type, data) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
            (digest, media_type, data),
        )
    return digest


def import_card(s: Store, imported: ImportedCard) -> str:
    """A new bot made from a card, which it keeps with its avatar; returns the bot's id.

    The bot's name, persona and greeting are the card's name, description
    and first message, cut to the protocol's limits (the card keeps them whole).
    """
    card = imported.card
    name = card.name.strip()[:MAX_NAME].strip()
    with s.transaction():
        avatar = None
        kind = image_type(imported.avatar) if imported.avatar else None
        if imported.avatar and kind is not None:
            avatar = put_blob(s, imported.avatar, kind)
        bot_id = s.new_bot_id(name)
        s.append(
            ev.BotCreated(
                bot_id, name, card.description[:MAX_PERSONA], card.first_mes[:MAX_GREETING]
            ),
            ev.BotCard(bot_id, card.spec, card.source, avatar),
        )
    return bot_id


def new_lorebook_id(s: Store, name: str) -> str:
    """A readable id for a new lorebook, from its name: ``lore-kingdom``, ``lore-kingdom-2``..."""
    base = "lore-" + (re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:40] or "book")
    candidate, n = base.rstrip("-"), 1
    while s.conn.execute("SELECT 1 FROM lorebooks WHERE lorebook_id = ?", (candidate,)).fetchall():
        n += 1
        candidate = f"{base}-{n}"
    return candidate


def import_lorebook(s: Store, book: Lorebook, fallback_name: str = "Lorebook") -> str:
    """A lorebook kept whole, under a new id; returns the id.

    A book without a name (world-info files often have none) takes ``fallback_name``.
    """
    if book.format == "character_book":
        raise Invalid("a card's own book stays with its card; import the card instead")
    name = (book.name.strip() or fallback_name)[:MAX_TITLE]
    with s.transaction():
        lorebook_id = new_lorebook_id(s, name)
        s.append(
            ev.LorebookImported(lorebook_id, name, book.format, book.source, len(book.entries))
        )
    return lorebook_id


@frozen
class ChatImport:
    """What importing a chat made: the chat, and the bots created for names no bot had."""

    chat_id: str
    created_bots: tuple[str, ...]


def import_chat(s: Store, chat: StChat) -> ChatImport:
    """A SillyTavern chat as a troupe chat with the same timeline.

    Its characters are found by name among the bots (any case), or created
    bare. The person's lines become user turns (cut to the protocol's
    length, the line itself kept whole), each character's line a beat
    answering the user turn before it (or the chat's opening). System lines
    and blank messages make no turn. The whole file's lines are kept in the
    ``chat_imported`` event, swipes, dates and ``extra`` included.
    """
    names = _character_names(chat)
    if not names:
        raise Invalid("the chat names no character: no header character_name, no message of one")
    if len(names) > MAX_CAST:
        raise Invalid(
            f"the chat has {len(names)} characters; a cast holds at most {MAX_CAST}: "
            + ", ".join(names)
        )
    with s.transaction():
        created: list[str] = []
        bot_of: dict[str, str] = {}
        for name in names:
            found = _bot_named(s, name)
            if found is None:
                found = s.new_bot_id(name)
                s.append(ev.BotCreated(found, name[:MAX_NAME].strip() or found, ""))
                created.append(found)
            bot_of[name.casefold()] = found
        cast = tuple(dict.fromkeys(bot_of.values()))
        title = ("Imported: " + ", ".join(names))[:MAX_TITLE]
        chat_id = s.new_chat_id()
        skipped = tuple(
            n for n, line in enumerate(chat.lines) if line.is_system or not line.text.strip()
        )
        opened = s.append(
            ev.ChatCreated(
                chat_id, title, cast[0], cast[1] if len(cast) > 1 else None, None, cast=cast
            ),
            ev.SceneOpened(chat_id, None),
            ev.ChatImported(
                chat_id,
                "st_chat",
                chat.header,
                tuple(line.source for line in chat.lines),
                skipped,
            ),
        ).ids
        answering = opened[0]  # lines before the person's first answer the chat's opening
        for n, line in enumerate(chat.lines):
            if n in skipped:
                continue
            if line.is_user:
                prose = line.text[:MAX_PROSE]
                answering = s.append(ev.UserTurn(chat_id, prose, parse_prose(prose))).ids[0]
            else:
                speaker = bot_of[(line.name.strip() or names[0]).casefold()]
                s.append(ev.AssistantTurn(chat_id, speaker, answering, None, line.text))
    return ChatImport(chat_id, tuple(created))


def _character_names(chat: StChat) -> list[str]:
    """The chat's characters: the header's first, then every other speaker, in order."""
    names: dict[str, str] = {}
    for name in (chat.character_name, *(ln.name for ln in chat.lines if not ln.is_user)):
        name = name.strip()
        if name and name.casefold() not in names:
            names[name.casefold()] = name
    lines = [ln for ln in chat.lines if not ln.is_user and not ln.is_system and ln.text.strip()]
    if any(not ln.name.strip() for ln in lines) and not names:
        names["character"] = "Character"
    speaking = {ln.name.strip().casefold() for ln in lines} | {chat.character_name.casefold()}
    return [name for key, name in names.items() if key in speaking or key == "character"]


def _bot_named(s: Store, name: str) -> str | None:
    """The oldest live bot called ``name`` (any case), or None."""
    for bot in s.list_bots():
        if bot.name.casefold() == name.casefold() and bot.id != YOU_ID:
            return bot.id
    return None


@frozen
class Done:
    """What one imported file became: a bot, a lorebook or a chat (with the bots it made)."""

    kind: Literal["bot", "lorebook", "chat"]
    id: str
    created_bots: tuple[str, ...] = ()


def import_any(
    s: Store, imported: ImportedCard | ImportedLorebook | ImportedChat, name: str = ""
) -> Done:
    """Write whatever :func:`story.read_import` read; ``name`` names a book that has none."""
    if isinstance(imported, ImportedCard):
        return Done("bot", import_card(s, imported))
    if isinstance(imported, ImportedLorebook):
        return Done("lorebook", import_lorebook(s, imported.book, name or "Lorebook"))
    made = import_chat(s, imported.chat)
    return Done("chat", made.chat_id, made.created_bots)
