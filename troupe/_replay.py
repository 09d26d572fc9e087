"""``troupe replay SCRIPT``: run a scripted dialogue and print what happened."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Mapping
from pathlib import Path

import trio

from ._dialogue import ScriptError, load_script, run_script


def run_replay(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    """Run the script; exit 0 when every expectation held, 1 when one failed, 2 on a bad script."""
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    try:
        data = load_script(Path(args.script))
        outcome = trio.run(run_script, data, Path(args.db) if args.db else None)
    except ScriptError as exc:
        print(f"troupe replay: {exc}", file=sys.stderr)
        return 2
    if not args.quiet:
        print("\n".join(outcome.lines))
    if outcome.failures:
        print(f"\n{len(outcome.failures)} expectation(s) failed:", file=sys.stderr)
        for failure in outcome.failures:
            print(f"  {failure}", file=sys.stderr)
        return 1
    return 0
