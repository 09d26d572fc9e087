"""``troupe``: serve the product, or replay a scripted dialogue."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence

from . import __version__


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``troupe``."""
    parser = argparse.ArgumentParser(
        prog="troupe", description="Narrative chat with LLM-played characters."
    )
    parser.add_argument("--version", action="version", version=f"troupe {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the server and the web client")
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default 8765)")
    serve.add_argument("--data", help="data folder (default: a per-user data folder)")
    serve.add_argument("--token", help="access token (default: kept in the data folder)")
    serve.add_argument(
        "--allow-origin", action="append", default=None, help="another allowed Origin (repeatable)"
    )
    _model_flags(serve)

    replay = commands.add_parser("replay", help="run a scripted dialogue headless")
    replay.add_argument("script", help="a dialogue script (TOML)")
    replay.add_argument("--db", help="database file to keep (default: a temporary one)")
    replay.add_argument("--quiet", action="store_true", help="print only failures")
    return parser


def _model_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backend", choices=["local", "openai", "scripted"])
    parser.add_argument("--base-url", help="OpenAI-compatible server, e.g. http://host:8000/v1")
    parser.add_argument("--model", help="narrative model name")
    parser.add_argument("--classifier-model", help="classifier model (default: --model)")
    parser.add_argument("--script", help="scripted replies file (with --backend scripted)")
    parser.add_argument("--max-connections", type=int, help="concurrent model requests")


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    """Entry point of the ``troupe`` command; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    environ = os.environ if env is None else env
    if args.command == "serve":
        from ._serve import run_serve

        status: int = run_serve(args, environ)
        return status
    if args.command == "replay":
        from ._replay import run_replay

        status = run_replay(args, environ)
        return status
    parser.print_help()
    return 2


if __name__ == "__main__":
    sys.exit(main())
