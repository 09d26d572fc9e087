"""How many chats one troupe process carries at an inter-token gap p99 of at most 100 ms.

Each chat is watched by 4 connections, and its turn streams at 20 tokens a
second from the project's OpenAI-compatible test server; the model server,
``troupe serve`` and the clients each run in a process of their own (see
``_load.py``). A step passes when the p99 of the gaps between token frames
at every watcher is at most 100 ms and every beat completed in time. The
sweep grows the chat count by half until a step fails, then bisects to
within a tenth, within a time budget; the trees compared take turns.

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
START = 20
CEILING = 600
BUDGET = 200.0
"""Seconds of sweeping in all; the bisection stops early past it."""
WORDS = 100
"""Tokens per beat: five seconds at 20 a second."""


def passes(run: dict[str, Any]) -> bool:
    """Whether a step kept the gap p99 within the bound with every beat complete."""
    return run["gap_p99_ms"] <= GAP_P99_MS and run["incomplete_watchers"] == 0


class Sweep:
    """One tree's search: grow by half until a step fails, then bisect to within a tenth."""

    def __init__(self, name: str, tree: Path, tmp: Path) -> None:
        self.name, self.tree, self.tmp = name, tree, tmp
        self.good, self.bad = 0, CEILING + 1
        self.growing = True
        self.steps: list[dict[str, Any]] = []

    def next(self) -> int | None:
        """The chat count to try next, or None when the search is done."""
        if self.growing:
            chats = int(self.good * 1.5) if self.good else START
            return chats if chats <= CEILING else None
        if self.bad - self.good <= max(2, self.good // 10):
            return None
        return (self.good + self.bad) // 2

    def step(self, chats: int) -> None:
        run = measure(
            "troupe", chats, words=WORDS, tree=self.tree, data=self.tmp / f"{len(self.steps)}"
        )
        run["passed"] = passes(run)
        self.steps.append(run)
        if run["passed"]:
            self.good = chats
        else:
            self.bad = chats
            self.growing = False
        print(
            f"  {self.name}, {chats} chats: gap p99 {run['gap_p99_ms']:.0f} ms,"
            f" first token p99 {run['first_token_p99_ms']:.0f} ms,"
            f" {'pass' if run['passed'] else 'fail'}",
            flush=True,
        )

    def figures(self) -> dict[str, Any]:
        """The largest chat count that passed, the first that failed, and every step."""
        failing = self.bad if self.bad <= CEILING else None
        return {"capacity": self.good, "first_failing": failing, "steps": self.steps}


def main() -> None:
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        compared = trees(sys.argv[1:], Path(tmp))
        sweeps = [Sweep(name, tree, Path(tmp) / name) for name, tree in compared.items()]
        started = time.monotonic()
        # The trees take turns, step by step, so that whatever else the machine
        # does meanwhile weighs on both alike.
        while time.monotonic() - started < BUDGET:
            pending = [(sweep, sweep.next()) for sweep in sweeps]
            pending = [(sweep, chats) for sweep, chats in pending if chats is not None]
            if not pending:
                break
            for sweep, chats in pending:
                sweep.step(chats)
        for sweep in sweeps:
            results[sweep.name] = sweep.figures()
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
