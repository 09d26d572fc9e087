"""``troupe import FILE...`` as a person runs it: a real process on a real data folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from store import Store
from tests.support.card_files import (
    card_chunk,
    charx,
    jsonl,
    png,
    st_chat_lines,
    text_chunk,
    v1_card,
    v2_card,
    v3_card,
    world_info,
)

ROOT = Path(__file__).resolve().parents[1]


def troupe(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("TROUPE_DATA", None)
    return subprocess.run(
        [sys.executable, "-m", "troupe", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
        check=False,
    )


def library(folder: Path) -> dict[str, Path]:
    folder.mkdir()
    files = {
        "mira.png": png(card_chunk("chara", v2_card())),
        "tam.json": json.dumps({**v1_card(), "name": "Tam"}).encode(),
        "wren.charx": charx(v3_card(name="Wren"), {"assets/icon/images/main.png": png()}),
        "harbour.json": json.dumps(world_info()).encode(),
        "evening.jsonl": jsonl(st_chat_lines()),
    }
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return {name: folder / name for name in files}


def test_a_whole_library_is_imported_one_line_per_file(tmp_path: Path) -> None:
    files = library(tmp_path / "cards")
    data = tmp_path / "data"
    done = troupe("import", "--data", str(data), *map(str, files.values()))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines == [
        f"{files['mira.png']}: bot 'Mira' mira",
        f"{files['tam.json']}: bot 'Tam' tam",
        f"{files['wren.charx']}: bot 'Wren' wren",
        f"{files['harbour.json']}: lorebook 'harbour' lore-harbour (4 entries)",
        f"{files['evening.jsonl']}: chat 'Imported: Mira' c1",
    ]
    store = Store.open(data / "troupe.db", recover=False)
    try:
        assert [b.id for b in store.list_bots()] == ["mira", "tam", "wren"]
        assert store.avatar_of("wren") is not None
        assert [b.lorebook_id for b in store.list_lorebooks()] == ["lore-harbour"]
        chat = store.get_chat("c1")
        assert chat is not None and chat.cast == ("mira",)  # the card's Mira, found by name
        assert len(store.timeline("c1")) == 3
    finally:
        store.close()


def test_bad_files_are_named_with_their_error_and_the_rest_still_go_in(tmp_path: Path) -> None:
    folder = tmp_path / "cards"
    folder.mkdir()
    good = folder / "tam.json"
    good.write_bytes(json.dumps({**v1_card(), "name": "Tam"}).encode())
    no_card = folder / "photo.png"
    no_card.write_bytes(png(text_chunk("Software", b"x")))
    nameless = folder / "nobody.json"
    nameless.write_bytes(json.dumps({"description": "nameless"}).encode())
    missing = folder / "missing.png"
    data = tmp_path / "data"

    done = troupe(
        "import", "--data", str(data), str(no_card), str(good), str(nameless), str(missing)
    )
    assert done.returncode == 1
    lines = done.stdout.splitlines()
    assert lines[0].startswith(f"{no_card}: error no_card_chunk: ")
    assert lines[1] == f"{good}: bot 'Tam' tam"
    assert lines[2].startswith(f"{nameless}: error no_name: ")
    assert lines[3].startswith(f"{missing}: error unreadable: ")
    assert "3 of 4 file(s) could not be imported" in done.stderr
    store = Store.open(data / "troupe.db", recover=False)
    try:
        assert [b.id for b in store.list_bots()] == ["tam"]
        assert store.event_count() == 2  # the bot and its card, nothing else
    finally:
        store.close()
