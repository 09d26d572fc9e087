"""The HTTP API over real HTTP on loopback: import every format, export with nothing lost.

Every file is made by the tests (tests/support/card_files.py); every bad one
is refused with its code, and nothing is written.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import trio
from gateway_kit import TOKEN, Client, Server

from story import MAX_IMPORT_BYTES, strip_card
from tests.support.card_files import (
    apng,
    card_chunk,
    charx,
    chunk_card,
    huge_charx,
    jsonl,
    lorebook_v3,
    png,
    st_chat_lines,
    text_chunk,
    text_chunks,
    v1_card,
    v2_card,
    v3_card,
    world_info,
)

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def as_json(value: object) -> bytes:
    return json.dumps(value).encode("utf-8")


@pytest.fixture
async def http(server: Server) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{server.port}", headers=AUTH, timeout=30
    ) as client:
        yield client


async def post(http: httpx.AsyncClient, data: bytes, **params: str) -> httpx.Response:
    return await http.post("/api/import", content=data, params=params)


async def imported(http: httpx.AsyncClient, data: bytes, kind: str) -> dict[str, Any]:
    response = await post(http, data)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    assert answer["kind"] == kind
    return answer


# --- every kind of file ---


async def test_a_v1_json_card_becomes_a_bot_and_every_client_hears_of_it(
    http: httpx.AsyncClient, client: Client
) -> None:
    await client.ask("hello", protocol=1)
    answer = await imported(http, as_json(v1_card()), "bot")
    bot = answer["bot"]
    assert (bot["name"], bot["card"]) == ("Mira", True)
    assert "avatar_url" not in bot  # a JSON card has no image
    told = await client.until("bot")
    assert told["bot"] == bot and "reply_to" not in told

    exported = (await http.get(f"/api/bots/{bot['id']}/card.json")).json()
    assert exported["spec"] == "chara_card_v3"
    for key, value in v1_card().items():  # every original key, where it was
        assert exported[key] == value
        if key in exported["data"]:
            assert exported["data"][key] == value
    card_png = (await http.get(f"/api/bots/{bot['id']}/card.png")).content
    chara = chunk_card(card_png, "chara")
    assert chara["spec"] == "chara_card_v2"
    assert {k: chara[k] for k in v1_card()} == v1_card()
    assert chunk_card(card_png, "ccv3") == exported


async def test_a_v2_png_with_a_book_comes_back_field_for_field(http: httpx.AsyncClient) -> None:
    original = v2_card()
    data = png(card_chunk("chara", original))
    bot = (await imported(http, data, "bot"))["bot"]
    assert bot["avatar_url"] == f"/api/bots/{bot['id']}/avatar"

    avatar = await http.get(bot["avatar_url"])
    assert avatar.headers["content-type"] == "image/png"
    assert avatar.content == strip_card(data)  # the image, its card chunks stripped
    assert b"chara" not in avatar.content

    card_png = await http.get(f"/api/bots/{bot['id']}/card.png")
    assert card_png.headers["content-type"] == "image/png"
    assert "attachment" in card_png.headers["content-disposition"]
    assert chunk_card(card_png.content, "chara") == original
    v3 = chunk_card(card_png.content, "ccv3")
    assert v3["spec"] == "chara_card_v3"
    assert (
        v3["data"]["character_book"]["extensions"]
        == original["data"]["character_book"]["extensions"]
    )
    assert v3["data"]["data_unknown"] == {"kept": True} and v3["root_unknown"] == "kept"
    assert (await http.get(f"/api/bots/{bot['id']}/card.json")).json() == v3


async def test_a_v3_png_with_both_chunks_prefers_ccv3_and_exports_it_as_it_came(
    http: httpx.AsyncClient,
) -> None:
    original = v3_card()
    older = v2_card(name="Old Mira")
    data = apng(card_chunk("chara", older), card_chunk("ccv3", original))
    bot = (await imported(http, data, "bot"))["bot"]
    assert bot["name"] == "Mira"

    card_png = (await http.get(f"/api/bots/{bot['id']}/card.png")).content
    assert chunk_card(card_png, "ccv3") == original
    assert chunk_card(card_png, "chara")["data"]["nickname"] == "Mimi"
    assert (await http.get(f"/api/bots/{bot['id']}/card.json")).json() == original
    assert b"acTL" in card_png and b"fdAT" in card_png  # still animated


async def test_a_charx_keeps_its_icon_as_the_avatar(http: httpx.AsyncClient) -> None:
    icon = png(text_chunk("Comment", b"the icon"))
    original = v3_card()
    data = charx(original, {"assets/icon/images/main.png": icon, "assets/x.bin": b"x"})
    bot = (await imported(http, data, "bot"))["bot"]
    assert (await http.get(bot["avatar_url"])).content == icon
    assert (await http.get(f"/api/bots/{bot['id']}/card.json")).json() == original
    card_png = (await http.get(f"/api/bots/{bot['id']}/card.png")).content
    assert strip_card(card_png) == icon
    assert chunk_card(card_png, "ccv3") == original


@pytest.mark.parametrize(
    ("doc", "fmt", "entries"), [(world_info(), "world_info", 4), (lorebook_v3(), "lorebook_v3", 2)]
)
async def test_lorebooks_are_imported_listed_and_told(
    http: httpx.AsyncClient, client: Client, doc: dict[str, Any], fmt: str, entries: int
) -> None:
    await client.ask("hello", protocol=1)
    response = await post(http, as_json(doc), name="harbour")
    assert response.status_code == 200, response.text
    answer = response.json()
    book = answer["lorebook"]
    assert answer["kind"] == "lorebook"
    assert (book["format"], book["entries"], book["problems"]) == (fmt, entries, [])
    assert book["name"] == ("harbour" if fmt == "world_info" else "Lantern lore")
    assert (await client.until("lorebook"))["lorebook"] == book
    listed = await client.ask("list_lorebooks")
    assert listed["type"] == "lorebooks" and listed["lorebooks"] == [book]


async def test_a_broken_regex_is_reported_on_import(http: httpx.AsyncClient) -> None:
    doc = world_info()
    doc["entries"]["1"]["key"] = ["/[oops/"]
    book = (await imported(http, as_json(doc), "lorebook"))["lorebook"]
    assert [p["entry"] for p in book["problems"]] == ["1 (entry 1)"]
    assert "[oops" in book["problems"][0]["problem"]


async def test_a_sillytavern_chat_round_trips_through_export(
    http: httpx.AsyncClient, client: Client
) -> None:
    await client.ask("hello", protocol=1)
    lines = st_chat_lines()
    lines.append({"name": "Narrator", "is_user": False, "is_system": True, "mes": "Rain."})
    lines.append({"name": "Ada", "is_user": True, "mes": "And a cellar?", "send_date": ""})
    answer = await imported(http, jsonl(lines), "chat")
    chat = answer["chat"]
    assert [b["name"] for b in answer["bots"]] == ["Mira"]
    assert (await client.until("bot"))["bot"] == answer["bots"][0]
    assert (await client.until("chat"))["chat"] == chat

    timeline = await _timeline(client, chat["id"])
    assert timeline == [
        ("Mira", "Evening, Ada."),
        ("you", "A brass key, Mira."),
        ("Mira", "Second try."),
        ("you", "And a cellar?"),
    ]

    exported = await http.get(f"/api/chats/{chat['id']}/export.jsonl")
    assert exported.status_code == 200
    rows = [json.loads(line) for line in exported.text.splitlines()]
    assert rows[0] == lines[0]  # the file's own header
    for row, line in zip(rows[1:], lines[1:], strict=True):
        assert _without_troupe(row, line) == line  # each line as it was, troupe's data added
    assert rows[3]["swipes"] == ["First try.", "Second try."]  # the swipes, kept
    assert rows[1]["extra"]["troupe"]["speaker_id"] == answer["bots"][0]["id"]

    again = await imported(http, exported.content, "chat")
    assert again["bots"] == []  # Mira is found by name now
    assert await _timeline(client, again["chat"]["id"]) == timeline

    markdown = await http.get(f"/api/chats/{chat['id']}/transcript.md")
    assert markdown.headers["content-type"].startswith("text/markdown")
    assert "**Mira:** Second try." in markdown.text


async def test_a_chat_made_in_troupe_exports_its_regenerations_as_swipes(
    http: httpx.AsyncClient, server: Server, client: Client
) -> None:
    await client.ask("hello", protocol=1)
    mira = (await client.ask("create_bot", name="Mira", persona="barkeep", greeting="Hi."))["bot"]
    chat_id = (await client.ask("create_chat", host_bot_id=mira["id"]))["chat"]["id"]
    await client.ask("open_chat", chat_id=chat_id)
    server.backend.push_narrative("First answer.")
    await client.ask("send_turn", chat_id=chat_id, prose="Hello there.")
    await client.until("turn_settled")
    state = await client.ask("open_chat", chat_id=chat_id)
    last = state["timeline"][-1]["event_id"]
    server.backend.push_narrative("Second answer.")
    await client.ask("regenerate", chat_id=chat_id, event_id=last)
    await client.until("turn_settled")

    rows = [
        json.loads(x)
        for x in (await http.get(f"/api/chats/{chat_id}/export.jsonl")).text.splitlines()
    ]
    assert rows[0]["character_name"] == "Mira"
    assert [(r["name"], r["is_user"], r["mes"]) for r in rows[1:]] == [
        ("Mira", False, "Hi."),
        ("You", True, "Hello there."),
        ("Mira", False, "Second answer."),
    ]
    assert rows[3]["swipes"] == ["First answer.", "Second answer."] and rows[3]["swipe_id"] == 1
    assert rows[2]["extra"]["troupe"]["kind"] == "user"
    again = await imported(http, "\n".join(json.dumps(r) for r in rows).encode(), "chat")
    assert [t[1] for t in await _timeline(client, again["chat"]["id"])] == [
        "Hi.",
        "Hello there.",
        "Second answer.",
    ]


def _without_troupe(row: dict[str, Any], line: dict[str, Any]) -> dict[str, Any]:
    """An exported line without troupe's own data (an ``extra`` only if the line had one)."""
    extra = {k: v for k, v in row.get("extra", {}).items() if k != "troupe"}
    rest = {k: v for k, v in row.items() if k != "extra"}
    return {**rest, "extra": extra} if "extra" in line else rest


async def _timeline(client: Client, chat_id: str) -> list[tuple[str, str]]:
    state = await client.ask("open_chat", chat_id=chat_id)
    bots = {b["id"]: b["name"] for b in (await client.ask("list_bots"))["bots"]}
    await client.ask("close_chat", chat_id=chat_id)
    return [(bots.get(t["speaker_id"], t["speaker_id"]), t["text"]) for t in state["timeline"]]


# --- refusals ---

BAD = {
    "not a recognised file": (b"Once upon a time", 400, "not_a_card"),
    "a png without a card chunk": (png(text_chunk("Software", b"x")), 400, "no_card_chunk"),
    "bad base64": (png(text_chunk("chara", b"%%%not-base64%%%")), 400, "bad_base64"),
    "invalid json": (b'{"name": "Mira", "description": ', 400, "bad_json"),
    "a card without a name": (as_json({"description": "nameless"}), 400, "no_name"),
    "a charx over 100 MiB unpacked": (huge_charx(), 400, "charx_too_large"),
    "a charx escaping its root": (
        charx(v3_card(), {"../../etc/cron.d/x": b"x"}),
        400,
        "charx_path",
    ),
    "a jsonl with a broken line": (
        jsonl(st_chat_lines()[:2]) + b'{"name": "Mira", "mes": "cut\n',
        400,
        "bad_jsonl",
    ),
    "a file over 20 MiB": (b" " * (MAX_IMPORT_BYTES + 1), 413, "too_large"),
    "a chat with nine characters": (
        jsonl([{"name": f"C{n}", "is_user": False, "mes": "hi"} for n in range(9)]),
        400,
        "invalid",
    ),
}


@pytest.mark.parametrize("name", list(BAD))
async def test_every_bad_file_is_refused_and_nothing_is_written(
    http: httpx.AsyncClient, server: Server, name: str
) -> None:
    data, status, code = BAD[name]
    before = await server.event_count()
    response = await post(http, data)
    assert response.status_code == status
    body = response.json()
    assert body["error"] == code and len(body["message"]) > 20
    assert await server.event_count() == before
    assert (await http.get("/api/bots/mira/card.json")).status_code == 404


async def test_a_streamed_body_over_20_mib_is_cut_off_with_413(
    http: httpx.AsyncClient, server: Server
) -> None:
    sent = 0

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: chunked
        nonlocal sent
        for _ in range(MAX_IMPORT_BYTES // (1 << 20) + 8):
            sent += 1 << 20
            yield b" " * (1 << 20)

    try:
        response = await http.post("/api/import", content=chunks())
    except httpx.HTTPError:
        pytest.fail("the server should answer before closing")
    assert response.status_code == 413
    assert response.json()["error"] == "too_large"
    assert await server.event_count() == 0


async def test_the_api_wants_the_token_and_a_known_origin(server: Server) -> None:
    base = f"http://127.0.0.1:{server.port}"
    data = as_json(v1_card())
    async with httpx.AsyncClient(base_url=base, timeout=10) as plain:
        assert (await plain.post("/api/import", content=data)).status_code == 401
        wrong = await plain.post(
            "/api/import", content=data, headers={"Authorization": "Bearer x"}
        )
        assert wrong.status_code == 401 and wrong.json()["error"] == "unauthorized"
        foreign = await plain.post(
            "/api/import",
            content=data,
            params={"token": TOKEN},
            headers={"Origin": "http://evil.example"},
        )
        assert foreign.status_code == 403
        assert await server.event_count() == 0
        own = await plain.post(
            "/api/import",
            content=data,
            params={"token": TOKEN},
            headers={"Origin": base},
        )
        assert own.status_code == 200
        bot_id = own.json()["bot"]["id"]
        assert (await plain.get(f"/api/bots/{bot_id}/card.json")).status_code == 401
        got = await plain.get(f"/api/bots/{bot_id}/card.json", params={"token": TOKEN})
        assert got.status_code == 200
        assert (await plain.get("/api/nothing", params={"token": TOKEN})).status_code == 404
        assert (await plain.get("/api/import", params={"token": TOKEN})).status_code == 405


async def test_any_bot_can_be_downloaded_as_a_card(
    http: httpx.AsyncClient, client: Client
) -> None:
    await client.ask("hello", protocol=1)
    tam = (await client.ask("create_bot", name="Tam", persona="a sailor", greeting="Ahoy."))["bot"]
    card = (await http.get(f"/api/bots/{tam['id']}/card.json")).json()
    assert (card["data"]["name"], card["data"]["description"], card["data"]["first_mes"]) == (
        "Tam",
        "a sailor",
        "Ahoy.",
    )
    image = (await http.get(f"/api/bots/{tam['id']}/card.png")).content
    assert set(text_chunks(image)) == {"chara", "ccv3"}
    assert (await http.get(f"/api/bots/{tam['id']}/avatar")).status_code == 404
    with trio.fail_after(10):
        assert (await http.get("/api/chats/c99/export.jsonl")).status_code == 404


async def test_a_fault_of_the_server_still_gets_an_answer(
    http: httpx.AsyncClient, server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(data: bytes, name: str = "") -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(server.engine.library, "import_file", broken)
    response = await post(http, as_json(v1_card()))
    assert response.status_code == 500
    assert response.json()["error"] == "internal"
