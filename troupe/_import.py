"""``troupe import FILE...``: bring a whole library of cards, lorebooks and chats in at once.

Works on the data folder directly, as ``serve`` would open it; each file is
read, then written in its own transaction, so one bad file costs only
itself. A server running on the same folder meanwhile is fine: SQLite lets
one writer in at a time, and the bots and chats made here are found by the
engine the next time it looks them up.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from pathlib import Path

from actors import store_import
from protocol import ProtocolError, refusals_answered
from store import Store, StoreError
from story import MAX_IMPORT_BYTES, CardError, read_import

from ._config import data_folder


def run_import(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    """Import every file named; 0 when all were imported, 1 when one or more failed.

    2 when the data folder's database cannot be opened at all.
    """
    data_dir = data_folder(args.data, env)
    try:
        # No recovery here: a server running on this folder may have a beat streaming.
        store = Store.open(data_dir / "troupe.db", data_dir=data_dir, recover=False)
    except StoreError as exc:
        print(f"troupe import: {exc}", file=sys.stderr)
        return 2
    failed = 0
    try:
        for name in args.files:
            line, ok = import_one(store, Path(name))
            print(line, flush=True)
            failed += not ok
    finally:
        store.close()
    if failed:
        print(f"{failed} of {len(args.files)} file(s) could not be imported", file=sys.stderr)
    return 1 if failed else 0


def import_one(store: Store, path: Path) -> tuple[str, bool]:
    """One file in: its line for the person (kind, name and id, or the error), and success."""
    try:
        if path.stat().st_size > MAX_IMPORT_BYTES:
            raise CardError(
                "too_large", f"the file is over {MAX_IMPORT_BYTES} bytes (20 MiB), the most"
            )
        imported = read_import(path.read_bytes())
        with refusals_answered():
            done = store_import(store, imported, path.stem)
    except OSError as exc:
        return f"{path}: error unreadable: {exc.strerror or exc}", False
    except CardError as exc:
        return f"{path}: error {exc.code}: {exc.message}", False
    except ProtocolError as exc:
        return f"{path}: error {exc.code}: {exc.message}", False
    except StoreError as exc:
        return f"{path}: error invalid: {exc}", False
    if done.bot is not None:
        return f"{path}: bot {done.bot.name!r} {done.bot.id}", True
    if done.lorebook is not None:
        book = done.lorebook
        return f"{path}: lorebook {book.name!r} {book.lorebook_id} ({book.entries} entries)", True
    assert done.chat is not None
    made = f", new bots {', '.join(b.id for b in done.bots)}" if done.bots else ""
    return f"{path}: chat {done.chat.title!r} {done.chat.id}{made}", True
