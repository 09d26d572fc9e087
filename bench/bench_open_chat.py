"""What opening a chat costs as its history grows: ``open_chat`` time and bytes.

Three chats of one database hold 100, 1,000 and 10,000 turns, written
straight through the store (no model). ``troupe serve`` runs in a process
of its own; a client in this process opens each chat over a WebSocket on
loopback, again and again, and times each ``open_chat`` from the command
sent to its ``chat_state`` received in full, and counts the frame's bytes.

Reported for each size: the median and p90 time and the bytes of
``chat_state``, and both as a ratio to the 100-turn chat (the goal: within
1.2 at 1,000 and 10,000 turns: opening a long chat costs what opening a
short one does). Measured for this tree and the previous release's
(``--before REV``: a git revision or a source folder; ``none`` to skip),
each on a database its own code wrote.

    python bench/bench_open_chat.py [--before REV|none]
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _load import TOKEN, percentile, serve_tree, stop, trees
from _report import report

SIZES = (100, 1_000, 10_000)
WARMUP = 5
OPENS = 60
MAX_FRAME = 64 * 1024 * 1024
"""The client takes frames this large: a whole 10,000-turn timeline, as before."""
PACE = 0.12
"""Seconds between opens, so the connection stays within the gateway's rate limit."""
REPLIES = '[[narrative]]\ntext = "Mira nods."\nkeep = true\n'


def fill(data: Path) -> None:
    """Write the three chats into ``data/troupe.db`` with the store of the tree on the path.

    Run in a process whose PYTHONPATH is the tree measured, so each tree's
    database is written by its own code.
    """
    from protocol import events as ev
    from store import Store

    store = Store.open(data / "troupe.db", data_dir=data)
    try:
        store.append(ev.BotCreated("mira", "Mira", "Keeps the bar at the Gilded Eel."))
        ids = {}
        for size in SIZES:
            chat_id = store.new_chat_id()
            store.append(ev.ChatCreated(chat_id, f"{size} turns", "mira"))
            for start in range(0, size, 200):
                batch: list[ev.Event] = []
                # The log's next id: each answer names the turn just before it.
                (first,) = store.conn.execute(
                    "SELECT coalesce(max(id), 0) + 1 FROM event_log"
                ).fetchone()
                for n in range(start, min(size, start + 200)):
                    if n % 2 == 0:
                        prose = f'Turn {n}: *I lean on the bar.* "And then what happened?"'
                        batch.append(ev.UserTurn(chat_id, prose, ()))
                    else:
                        text = f'Turn {n}: Mira wipes a glass. "Then the tide came in, as always."'
                        batch.append(
                            ev.AssistantTurn(chat_id, "mira", first + len(batch) - 1, None, text)
                        )
                store.append(*batch)
            ids[size] = chat_id
    finally:
        store.close()
    print(json.dumps(ids))


def prepare(tree: Path, data: Path) -> dict[int, str]:
    """Fill a database with the tree's own store; the chat id of each size."""
    data.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [sys.executable, __file__, "fill", str(data)],
        env={**os.environ, "PYTHONPATH": str(tree)},
        cwd=tree,
        capture_output=True,
        text=True,
        check=True,
    )
    return {int(size): chat_id for size, chat_id in json.loads(done.stdout).items()}


def serve(tree: Path, data: Path) -> tuple[subprocess.Popen[str], int]:
    """``troupe serve`` from ``tree`` on ``data`` (a scripted model: no turn is taken)."""
    (data / "replies.toml").write_text(REPLIES)
    return serve_tree(
        tree, data, ["--backend", "scripted", "--script", str(data / "replies.toml")]
    )


async def open_many(port: int, chats: dict[int, str]) -> dict[int, dict[str, float]]:
    """Open each chat ``WARMUP + OPENS`` times; the timed opens' figures per size."""
    import trio
    from trio_websocket import open_websocket_url

    figures: dict[int, dict[str, float]] = {}
    url = f"ws://127.0.0.1:{port}/ws?token={TOKEN}"
    async with open_websocket_url(url, max_message_size=MAX_FRAME) as ws:
        count = 0

        async def ask(kind: str, **fields: Any) -> tuple[str, float]:
            nonlocal count
            count += 1
            ident = str(count)
            started = time.perf_counter()
            await ws.send_message(json.dumps({"type": kind, "id": ident, **fields}))
            while True:
                with trio.fail_after(60):
                    frame = await ws.get_message()
                received = time.perf_counter()
                # Only the answer's own frame carries this reply_to (the last field).
                if frame.rstrip().rstrip("}").endswith((f'"{ident}"', f"'{ident}'")):
                    return str(frame), received - started

        await ask("hello", protocol=1)
        times: dict[int, list[float]] = {size: [] for size in chats}
        sizes: dict[int, int] = {}
        sent: dict[int, int] = {}
        # Round after round, each chat once a round: what else the machine does
        # weighs on every size alike.
        for n in range(WARMUP + OPENS):
            for size, chat_id in chats.items():
                # Two commands an open: kept under the gateway's 20 a second per connection.
                await trio.sleep_until(trio.current_time() + PACE)
                frame, seconds = await ask("open_chat", chat_id=chat_id)
                state = json.loads(frame)
                assert state["type"] == "chat_state", frame[:200]
                await ask("close_chat", chat_id=chat_id)
                if n >= WARMUP:
                    times[size].append(seconds)
                    sizes[size] = len(frame.encode())
                    sent[size] = len(state["timeline"])
        for size in chats:
            figures[size] = {
                "median_ms": statistics.median(times[size]) * 1000,
                "p90_ms": percentile(times[size], 0.9) * 1000,
                "bytes": float(sizes[size]),
                "turns_sent": float(sent[size]),
            }
    return figures


def measure(tree: Path, data: Path) -> dict[int, dict[str, float]]:
    import trio

    chats = prepare(tree, data)
    process, port = serve(tree, data)
    try:
        return trio.run(open_many, port, chats)
    finally:
        stop(process)


def main(argv: list[str]) -> None:
    if argv[:1] == ["fill"]:
        fill(Path(argv[1]))
        return
    rows: list[tuple[str, str]] = []
    figures: dict[str, Any] = {"sizes": list(SIZES), "opens": OPENS}
    with tempfile.TemporaryDirectory() as tmp:
        for label, tree in trees(argv, Path(tmp)).items():
            result = measure(tree, Path(tmp) / label)
            base = result[SIZES[0]]
            ratios = {}
            for size in SIZES:
                one = result[size]
                ratio_time = one["median_ms"] / base["median_ms"]
                ratio_bytes = one["bytes"] / base["bytes"]
                ratios[size] = {"time": ratio_time, "bytes": ratio_bytes}
                rows.append(
                    (
                        f"{label}, {size:,} turns",
                        f"{one['median_ms']:7.2f} ms (p90 {one['p90_ms']:.2f})"
                        f"  {one['bytes'] / 1024:9.1f} KB  {int(one['turns_sent']):>6} turns sent"
                        f"  ×{ratio_time:.2f} time  ×{ratio_bytes:.2f} bytes",
                    )
                )
            worst = max(max(r["time"], r["bytes"]) for r in ratios.values())
            rows.append((f"{label}: worst ratio to 100 turns", f"×{worst:.2f} (goal ≤ 1.2)"))
            figures[label] = {
                str(size): {
                    **result[size],
                    "ratio_time": ratios[size]["time"],
                    "ratio_bytes": ratios[size]["bytes"],
                }
                for size in SIZES
            }
            figures[label]["worst_ratio"] = worst
    report("open_chat", rows, figures)


if __name__ == "__main__":
    main(sys.argv[1:])
