"""Gateway cost per frame and streaming latency, against bare trio-websocket in the same run.

Three processes per run (see ``_load.py``): the server under test, the
project's OpenAI-compatible test server streaming each reply at 20 tokens a
second, and the clients: 50 chats, 4 watching connections each, one turn
per chat (a bot with a real persona, 160 streamed tokens), every token
frame timed on arrival.

- Baseline (``raw``): a bare trio-websocket server sends the very same
  frames (the gateway's JSON bytes, one token a frame) at the same rate to
  the same clients.
- Baseline reading the model (``raw_model``): the same server, but each
  reply is read from the model server, in its own process as troupe's is,
  with a plain httpx client, and each token's frame sent as it arrives: the
  same frames and the same model stream as the gateway's, without anything
  else a turn does (the store, the classifier passes, the watchers' feed).
- ``troupe serve`` from this tree, and from the previous release's
  (``--before REV``: a git revision or a source folder; ``none`` to skip),
  with the model in its own process.

Reported for each: frames a second, server CPU per frame and per delivered
token (from ``/proc``: everything the server process did while the turns
streamed, the model client, the store and the classifier passes included),
tokens per token frame (above 1 when the gateway merged tokens for a
watcher that lagged: then CPU per frame flatters it, and the comparison
uses CPU per delivered token, which for the baseline is the same figure),
inter-token gap p50/p99 at each watcher, and send-to-first-token p99. Then
troupe's overhead above each baseline as a multiple of that baseline's own
cost. The target (at most 0.33) is judged on ``raw``, as it was set:
frames against frames. The ratio on ``raw_model`` says how much of the gap
is the model stream that troupe must read and ``raw`` never does.

With ``--rounds N`` every server runs N times, taking turns, and each
row shows the run with the median CPU per token (the ratios: the medians of
each round's, every baseline measured in the same round).

    python bench/bench_gateway.py [--before REV|none] [--rounds N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _load import measure, trees
from _report import report

CHATS = 50


def one_round(compared: dict[str, Path], folder: Path) -> dict[str, dict[str, Any]]:
    """Every server once, in turn: the baselines, then the trees; each run's figures."""
    runs = {
        "raw": measure("raw", CHATS, data=folder / "raw"),
        "raw_model": measure("raw_model", CHATS, data=folder / "raw_model"),
    }
    for name, tree in compared.items():
        runs[name] = measure("troupe", CHATS, tree=tree, data=folder / name)
    for run in runs.values():
        run["server_cpu_us_per_token"] = run["server_cpu_seconds"] / max(1, run["tokens"]) * 1e6
    raw = runs["raw"]["server_cpu_us_per_token"]
    raw_model = runs["raw_model"]["server_cpu_us_per_token"]
    for name, run in runs.items():
        if name.startswith("troupe"):
            cost = run["server_cpu_us_per_token"]
            run["overhead_ratio"] = (cost - raw) / raw
            run["overhead_ratio_raw_model"] = (cost - raw_model) / raw_model
    return runs


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run whose CPU per token is the median (the lower of two), with the median ratios."""
    cost = statistics.median_low(run["server_cpu_us_per_token"] for run in runs)
    chosen = dict(next(run for run in runs if run["server_cpu_us_per_token"] == cost))
    for key in ("overhead_ratio", "overhead_ratio_raw_model"):
        if key in chosen:
            chosen[key] = statistics.median(run[key] for run in runs)
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--rounds", type=int, default=1, help="rounds of every server in turn (medians shown)"
    )
    args, rest = parser.parse_known_args()
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    with tempfile.TemporaryDirectory() as tmp:
        compared = trees(rest, Path(tmp))
        rounds = [one_round(compared, Path(tmp) / f"round{n}") for n in range(args.rounds)]
    runs = {name: median_run([r[name] for r in rounds]) for name in rounds[0]}
    rows = []
    for name, run in runs.items():
        label = f"{name}, {CHATS} chats x 4"
        rows += [
            (f"{label}: frames/s", f"{run['frames_per_second']:,.0f}"),
            (f"{label}: tokens per token frame", f"{run['tokens_per_frame']:.2f}"),
            (f"{label}: server CPU per frame", f"{run['server_cpu_us_per_frame']:.0f} µs"),
            (f"{label}: server CPU per token", f"{run['server_cpu_us_per_token']:.0f} µs"),
            (
                f"{label}: inter-token gap p50/p99",
                f"{run['gap_p50_ms']:.0f} / {run['gap_p99_ms']:.0f} ms",
            ),
            (f"{label}: send to first token p99", f"{run['first_token_p99_ms']:.0f} ms"),
        ]
        if name.startswith("troupe"):
            rows += [
                (f"{label}: overhead above raw / raw", f"{run['overhead_ratio']:.2f}x"),
                (
                    f"{label}: overhead above raw_model / raw_model",
                    f"{run['overhead_ratio_raw_model']:.2f}x",
                ),
            ]
    figures: dict[str, Any] = {
        "chats": CHATS,
        "watchers": 4,
        "baseline": "raw",
        "rounds": args.rounds,
        "runs": runs,
        "every_round": rounds,
        "target": "overhead above raw at most a third of raw's own cost (ratio <= 0.33)",
    }
    report("gateway", rows, figures)


if __name__ == "__main__":
    main()
