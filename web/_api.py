"""The HTTP API beside the WebSocket: import a file, export cards and chats.

``POST /api/import`` takes a file's bytes as the body (a card as PNG, APNG,
JSON or CHARX, a lorebook, a SillyTavern chat) and answers what it became;
every open client is told of it as if it had been made by a command. The
``GET`` endpoints give a bot's card (``card.png``, ``card.json``), its
avatar, and a chat as SillyTavern JSONL or a Markdown transcript. An import
sent with ``?command_id=`` runs once: sent again, it answers as it did.

Authenticated like the WebSocket: the token as ``Authorization: Bearer``
or ``?token=`` (an ``<img>`` can only do the latter), and a browser's
``Origin``, when sent, must be the server's own or an allowed one. Every
refusal is JSON, ``{"error": code, "message": ...}``, and writes nothing.
"""

from __future__ import annotations

import hmac
import json
import logging
import re
from collections.abc import Callable
from urllib.parse import quote

import h11
import trio

import protocol as p
from actors import IMPORT_LIMIT, Engine, ImportAnswer, ImportRefused

from ._http import Request, render

log = logging.getLogger("troupe.web")

BODY_TIMEOUT = 120.0
"""Seconds a client has to send an import's whole body."""

_BOT = re.compile(r"^/api/bots/([^/]+)/(card\.png|card\.json|avatar)$")
_CHAT = re.compile(r"^/api/chats/([^/]+)/(export\.jsonl|transcript\.md)$")
_STATUS: dict[str, int] = {"not_found": 404, "too_large": 413, "busy": 409, "storage_full": 507}

Broadcast = Callable[[p.ServerMessage], None]
"""Tells every open client of something new (a ``bot``, a ``lorebook``, a ``chat``)."""


class Refused(Exception):
    """A request the API will not serve: the client's fault, answered as JSON."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def error_body(code: str, message: str) -> bytes:
    """The JSON of a refusal."""
    return json.dumps({"error": code, "message": message}, ensure_ascii=False).encode()


def token_of(request: Request) -> str:
    """The token a request presents: ``Authorization: Bearer TOKEN``, else ``?token=``."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return (request.query.get("token") or [""])[0]


class Api:
    """Serves ``/api/...`` requests for one gateway."""

    def __init__(
        self,
        engine: Engine,
        token: str,
        origins: Callable[[Request], set[str]],
        broadcast: Broadcast,
    ) -> None:
        self.engine = engine
        self.token = token
        self.origins = origins
        self.broadcast = broadcast

    async def answer(self, request: Request, stream: trio.abc.Stream) -> tuple[bytes, bool]:
        """The response, and whether the request's body was left unread (drain before closing)."""
        body_read = request.method != "POST"
        try:
            self._check_access(request)
            if request.path == "/api/import":
                if request.method != "POST":
                    raise Refused(405, "invalid", "/api/import takes a POST of the file's bytes")
                data = await read_body(request, stream)
                body_read = True
                return await self._import(request, data), False
            if request.method not in ("GET", "HEAD"):
                raise Refused(405, "invalid", f"{request.path} is read with GET")
            return await self._export(request), False
        except Refused as exc:
            out = render(
                request, exc.status, error_body(exc.code, exc.message), "application/json"
            )
            return out, not body_read
        except Exception:
            # Our bug: the person gets an answer all the same, the log the traceback.
            log.exception("%s %s failed", request.method, request.path)
            message = (
                "the server failed on this request (a fault of the server's; its log says more)"
            )
            out = render(request, 500, error_body("internal", message), "application/json")
            return out, not body_read

    def _check_access(self, request: Request) -> None:
        if not hmac.compare_digest(token_of(request).encode(), self.token.encode()):
            raise Refused(
                401, "unauthorized", "a valid token is needed: Authorization: Bearer or ?token="
            )
        origin = request.headers.get("origin")
        if origin is not None and origin.lower() not in self.origins(request):
            raise Refused(403, "forbidden", "pages from this origin may not use the API")

    async def _import(self, request: Request, data: bytes) -> bytes:
        name = (request.query.get("name") or [""])[0][:200]
        command_id = _command_id(request)

        async def run() -> str:
            done = await self.engine.library.import_file(data, name)
            self._tell(done)
            return _import_json(done).decode()

        try:
            if command_id is None:
                body = await run()
            else:
                # Once per id: a retry gets the first answer, and nobody is told twice.
                body = await self.engine.once_text("", command_id, "import", run, _lost_import)
        except ImportRefused as exc:
            raise Refused(413 if exc.code == "too_large" else 400, exc.code, exc.message) from None
        except p.ProtocolError as exc:
            raise Refused(_STATUS.get(exc.code, 400), exc.code, exc.message) from None
        return render(request, 200, body.encode(), "application/json")

    def _tell(self, done: ImportAnswer) -> None:
        for bot in (*done.bots, *((done.bot,) if done.bot else ())):
            self.broadcast(p.BotReply(bot))
        if done.lorebook is not None:
            self.broadcast(p.LorebookReply(done.lorebook))
        if done.chat is not None:
            self.broadcast(p.ChatReply(done.chat))

    async def _export(self, request: Request) -> bytes:
        library = self.engine.library
        if found := _BOT.match(request.path):
            bot_id, what = found.groups()
            if what == "avatar":
                avatar = await library.avatar(bot_id)
                if avatar is None:
                    raise Refused(404, "not_found", f"bot {bot_id!r} has no avatar")
                return render(request, 200, avatar[0], avatar[1])
            bot = await self._bot(bot_id)
            if what == "card.png":
                data = await library.card_png(bot_id)
                kind = "image/png"
            else:
                data = await library.card_json(bot_id)
                kind = "application/json"
            return _download(request, data, kind, f"{bot.name}.{what.split('.')[1]}")
        if found := _CHAT.match(request.path):
            chat_id, what = found.groups()
            if what == "export.jsonl":
                data = await library.chat_jsonl(chat_id)
                kind = "application/jsonl; charset=utf-8"
            else:
                data = await library.chat_markdown(chat_id)
                kind = "text/markdown; charset=utf-8"
            if data is None:
                raise Refused(404, "not_found", f"there is no chat {chat_id!r}")
            return _download(request, data, kind, f"{chat_id}.{what.split('.')[1]}")
        raise Refused(404, "not_found", f"no such endpoint: {request.path}")

    async def _bot(self, bot_id: str) -> p.Bot:
        for bot in await self.engine.list_bots():
            if bot.id == bot_id:
                return bot
        raise Refused(404, "not_found", f"there is no bot {bot_id!r}")


def _command_id(request: Request) -> str | None:
    """``?command_id=``: 1 to 64 characters that make the import safe to send again."""
    given = request.query.get("command_id")
    if not given:
        return None
    value = given[0]
    if not 1 <= len(value) <= p.MAX_ID:
        raise Refused(400, "invalid", f"command_id is {len(value)} characters; it takes 1 to 64")
    return value


async def _lost_import(_first_event_id: int) -> str:
    raise p.ProtocolError(
        "invalid",
        "this import already ran, but its answer was lost in a crash; the bots and chats show"
        " what it made (send a new command_id to import again)",
    )


def _download(request: Request, data: bytes | None, kind: str, filename: str) -> bytes:
    if data is None:
        raise Refused(404, "not_found", "it is gone")
    plain = re.sub(r"[^A-Za-z0-9._-]+", "_", filename).strip("_") or "download"
    disposition = f"attachment; filename=\"{plain}\"; filename*=UTF-8''{quote(filename)}"
    return render(request, 200, data, kind, (("Content-Disposition", disposition),))


def _import_json(done: ImportAnswer) -> bytes:
    """The answer to an import: its kind, what it became under that name, and more."""
    out: dict[str, object] = {"kind": done.kind}
    if done.bot is not None:
        out["bot"] = p.converter.unstructure(done.bot)
    if done.lorebook is not None:
        out["lorebook"] = p.converter.unstructure(done.lorebook)
    if done.chat is not None:
        out["chat"] = p.converter.unstructure(done.chat)
        out["bots"] = [p.converter.unstructure(b) for b in done.bots]
    if done.problems and done.kind == "bot":
        out["problems"] = [p.converter.unstructure(x) for x in done.problems]
    return json.dumps(out, ensure_ascii=False).encode()


async def read_body(request: Request, stream: trio.abc.Stream) -> bytes:
    """The whole body of a request, at most :data:`actors.IMPORT_LIMIT`.

    Refused with 413 as soon as the declared ``Content-Length`` or the bytes
    received so far pass the limit, before the rest is read.
    """
    declared = request.headers.get("content-length")
    if declared is not None and declared.strip().isdigit() and int(declared) > IMPORT_LIMIT:
        raise _too_large(int(declared))
    http = request.http
    if http.they_are_waiting_for_100_continue:
        await stream.send_all(
            http.send(h11.InformationalResponse(status_code=100, headers=[])) or b""
        )
    body = bytearray()
    with trio.move_on_after(BODY_TIMEOUT) as late:
        while True:
            try:
                event = http.next_event()
            except h11.RemoteProtocolError as exc:
                raise Refused(400, "bad_request", str(exc) or "malformed request body") from None
            if event is h11.NEED_DATA:
                chunk = await stream.receive_some(65536)
                if not chunk:
                    raise Refused(400, "bad_request", "the body ended before it was whole")
                http.receive_data(bytes(chunk))
            elif isinstance(event, h11.Data):
                body += event.data
                if len(body) > IMPORT_LIMIT:
                    raise _too_large(len(body))
            elif isinstance(event, h11.EndOfMessage):
                return bytes(body)
    assert late.cancelled_caught
    raise Refused(408, "bad_request", f"the body took longer than {BODY_TIMEOUT:.0f}s to send")


def _too_large(size: int) -> Refused:
    return Refused(
        413,
        "too_large",
        f"the file is {size} bytes; at most {IMPORT_LIMIT} bytes (20 MiB) are accepted",
    )
