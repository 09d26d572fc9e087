"""Cards, lorebooks and chats in and out, for the gateway's HTTP side.

A file is read (and refused, when broken) on a worker thread, since a
20 MiB file takes a while to parse and the trio loop must not wait; what
it holds is then written in one store call, one transaction. The bots and
chats made this way are ordinary ones: the engine finds them in the store
as it finds those made by ``create_bot`` and ``create_chat``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import trio
from attrs import frozen

from protocol import Bot, Chat, LorebookInfo, LoreProblem
from store import AsyncStore, Store, card_for, chat_export, import_any, lorebook_info
from story import (
    MAX_IMPORT_BYTES,
    CardError,
    ImportedCard,
    ImportedChat,
    ImportedLorebook,
    card_json_bytes,
    card_v3_json,
    chat_transcript,
    read_import,
    write_card_png,
    write_st_chat,
)

from ._refusals import refusals

T = TypeVar("T")

IMPORT_LIMIT = MAX_IMPORT_BYTES
"""The largest file an import takes (20 MiB): past it, ``too_large``."""


class ImportRefused(Exception):
    """A file that cannot be imported, and why: the person's file, so their fault.

    ``code`` names the problem (``not_a_card``, ``no_name``, ``too_large``...,
    docs/cards.md lists them); nothing was written.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


Imported = ImportedCard | ImportedLorebook | ImportedChat


@frozen
class ImportAnswer:
    """What an imported file became: a ``bot``, a ``lorebook`` or a ``chat``.

    ``bots`` are the bots an imported chat made for characters no bot was
    called (each is also a new bot to tell the clients of); ``problems``
    what in a card's own book or an imported lorebook can never work.
    """

    kind: str
    bot: Bot | None = None
    lorebook: LorebookInfo | None = None
    chat: Chat | None = None
    bots: tuple[Bot, ...] = ()
    problems: tuple[LoreProblem, ...] = ()


def store_import(s: Store, imported: Imported, name: str = "") -> ImportAnswer:
    """Write a file already read, in one transaction; what it became, as the wire shows it."""
    done = import_any(s, imported, name)
    if done.kind == "bot":
        bot = s.get_bot(done.id)
        assert bot is not None and isinstance(imported, ImportedCard)
        problems: tuple[LoreProblem, ...] = ()
        if imported.card.book is not None:
            problems = lorebook_info(imported.card.book, "").problems
        return ImportAnswer("bot", bot=bot, problems=problems)
    if done.kind == "lorebook":
        info = s.lorebook_info(done.id)
        assert info is not None
        return ImportAnswer("lorebook", lorebook=info, problems=info.problems)
    chat = s.get_chat(done.id)
    assert chat is not None
    bots = tuple(b for b in (s.get_bot(i) for i in done.created_bots) if b is not None)
    return ImportAnswer("chat", chat=chat, bots=bots)


def card_png(s: Store, bot_id: str) -> bytes | None:
    """A bot's card as a PNG (its avatar, or a placeholder) with ``chara`` and ``ccv3`` chunks."""
    card = card_for(s, bot_id)
    if card is None:
        return None
    avatar = s.avatar_of(bot_id)
    image = avatar[0] if avatar is not None and avatar[1] == "image/png" else None
    return write_card_png(card, image)


def card_json(s: Store, bot_id: str) -> bytes | None:
    """A bot's card as Character Card V3 JSON."""
    card = card_for(s, bot_id)
    return card_json_bytes(card_v3_json(card)) if card is not None else None


def chat_jsonl(s: Store, chat_id: str) -> bytes | None:
    """A chat as a SillyTavern JSONL file."""
    chat = chat_export(s, chat_id)
    return write_st_chat(chat) if chat is not None else None


def chat_markdown(s: Store, chat_id: str) -> bytes | None:
    """A chat as a readable Markdown transcript."""
    chat = chat_export(s, chat_id)
    return chat_transcript(chat).encode("utf-8") if chat is not None else None


class Library:
    """Imports and exports over the engine's store (see :attr:`Engine.library`)."""

    def __init__(self, store: AsyncStore) -> None:
        self.store = store

    async def _run(self, fn: Callable[..., T], *args: object) -> T:
        with refusals():
            return await self.store.run(fn, *args)

    async def import_file(self, data: bytes, name: str = "") -> ImportAnswer:
        """Read and write one file; raises :class:`ImportRefused` for a file it cannot take.

        ``name`` (a file name without its extension) names a lorebook that has none.
        The store's refusals (a chat of too many characters) come as
        :class:`protocol.ProtocolError`.
        """
        try:
            imported = await trio.to_thread.run_sync(read_import, data)
        except CardError as exc:
            raise ImportRefused(exc.code, exc.message) from None
        return await self._run(store_import, imported, name)

    async def card_png(self, bot_id: str) -> bytes | None:
        """:func:`card_png` on the store's thread; None when there is no such bot."""
        return await self._run(card_png, bot_id)

    async def card_json(self, bot_id: str) -> bytes | None:
        """:func:`card_json` on the store's thread; None when there is no such bot."""
        return await self._run(card_json, bot_id)

    async def avatar(self, bot_id: str) -> tuple[bytes, str] | None:
        """A live bot's avatar image and media type, or None."""

        def read(s: Store) -> tuple[bytes, str] | None:
            return s.avatar_of(bot_id) if s.get_bot(bot_id) is not None else None

        return await self._run(read)

    async def chat_jsonl(self, chat_id: str) -> bytes | None:
        """:func:`chat_jsonl` on the store's thread; None when there is no such chat."""
        return await self._run(chat_jsonl, chat_id)

    async def chat_markdown(self, chat_id: str) -> bytes | None:
        """:func:`chat_markdown` on the store's thread; None when there is no such chat."""
        return await self._run(chat_markdown, chat_id)
