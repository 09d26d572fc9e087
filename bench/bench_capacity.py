"""How many chats one troupe process carries at an inter-token gap p99 of at most 100 ms.

Each chat is watched by 4 connections, and its turn streams at 20 tokens a
second from the project's OpenAI-compatible test server; the model server,
``troupe serve`` and the clients each run in a process of their own (see
``_load.py``). A step passes when the p99 of the gaps between token frames
at every watcher is at most 100 ms and every beat completed in time. The
sweep grows the chat count by half until a step fails, then bisects to
within a tenth, within a time budget per tree.

The previous release's tree is swept in the same run as the baseline
(``--before REV``: a git revision or a source folder; ``none`` to skip).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _load import measure, trees
from _report import report

GAP_P99_MS = 100.0
START = 50
CEILING = 600
BUDGET = 110.0
"""Seconds of sweeping per tree; the bisection stops early past it."""
WORDS = 100
"""Tokens per beat: five seconds at 20 a second."""


def passes(run: dict[str, Any]) -> bool:
    """Whether a step kept the gap p99 within the bound with every beat complete."""
    return run["gap_p99_ms"] <= GAP_P99_MS and run["incomplete_watchers"] == 0


def sweep(tree: Path, tmp: Path) -> dict[str, Any]:
    """The largest chat count that passes, and every step taken."""
    steps: list[dict[str, Any]] = []
    started = time.monotonic()

    def step(chats: int) -> bool:
        run = measure("troupe", chats, words=WORDS, tree=tree, data=tmp / f"{len(steps)}")
        run["passed"] = passes(run)
        steps.append(run)
        print(
            f"  {chats} chats: gap p99 {run['gap_p99_ms']:.0f} ms,"
            f" first token p99 {run['first_token_p99_ms']:.0f} ms,"
            f" {'pass' if run['passed'] else 'fail'}",
            flush=True,
        )
        return bool(run["passed"])

    good, bad = 0, CEILING + 1
    chats = START
    while chats <= CEILING and time.monotonic() - started < BUDGET:
        if step(chats):
            good = chats
            chats = int(chats * 1.5)
        else:
            bad = chats
            break
    while bad - good > max(2, good // 10) and time.monotonic() - started < BUDGET:
        middle = (good + bad) // 2 if good else bad // 2
        if step(middle):
            good = middle
        else:
            bad = middle
    return {"capacity": good, "first_failing": bad if bad <= CEILING else None, "steps": steps}


def main() -> None:
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        compared = trees(sys.argv[1:], Path(tmp))
        for name, tree in compared.items():
            print(f"{name}:", flush=True)
            folder = Path(tmp) / name
            folder.mkdir()
            results[name] = sweep(tree, folder)
    rows = [
        (f"{name}: chats at gap p99 <= {GAP_P99_MS:.0f} ms", f"{figures['capacity']}")
        for name, figures in results.items()
    ]
    if "troupe_before" in results and results["troupe_before"]["capacity"]:
        ratio = results["troupe"]["capacity"] / results["troupe_before"]["capacity"]
        rows.append(("troupe / troupe_before", f"{ratio:.2f}x"))
        results["ratio_to_before"] = ratio
    report(
        "capacity",
        rows,
        {
            "watchers_per_chat": 4,
            "tokens_per_second": 20,
            "tokens_per_beat": WORDS,
            "gap_p99_bound_ms": GAP_P99_MS,
            "baseline": "troupe_before" if "troupe_before" in compared else None,
            **results,
        },
    )


if __name__ == "__main__":
    main()
