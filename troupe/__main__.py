"""``troupe``: serve the product, import cards, lorebooks and chats, or replay a dialogue."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence

from . import __version__

SERVE_EPILOG = (
    "A flag wins over its TROUPE_* variable, which wins over the default. "
    "The model server's API key is read only from the environment, never from a flag, "
    "and never logged: TROUPE_API_KEY, or else OPENAI_API_KEY."
)


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``troupe``."""
    parser = argparse.ArgumentParser(
        prog="troupe", description="Narrative chat with LLM-played characters."
    )
    parser.add_argument("--version", action="version", version=f"troupe {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    # Each flag's help names its TROUPE_* variable (tests/test_config.py holds us to it).
    serve = commands.add_parser(
        "serve",
        help="run the server and the web client",
        description="Run the server and the web client; print the address to open.",
        epilog=SERVE_EPILOG,
    )
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1; TROUPE_HOST)")
    serve.add_argument("--port", type=int, help="port to listen on (default 8765; TROUPE_PORT)")
    serve.add_argument("--data", help="data folder (default: a per-user data folder; TROUPE_DATA)")
    serve.add_argument(
        "--token", help="access token (default: made once, kept in the data folder; TROUPE_TOKEN)"
    )
    serve.add_argument(
        "--allow-origin",
        action="append",
        default=None,
        help="another allowed Origin, repeatable (TROUPE_ALLOW_ORIGIN: a comma-separated list, "
        "added to the flags')",
    )
    serve.add_argument(
        "--max-clients",
        type=int,
        help="WebSocket clients served at once; past it, HTTP 503 (default 512; "
        "TROUPE_MAX_CLIENTS)",
    )
    serve.add_argument(
        "--max-beats-per-turn",
        type=int,
        help="beats one turn streams at the most, interjections included, 1..8 (default 3; "
        "TROUPE_MAX_BEATS_PER_TURN)",
    )
    serve.add_argument(
        "--store",
        help="postgresql://... runs this process as one node of a cluster on that database "
        "(needs --bus; default: the embedded store in the data folder; TROUPE_STORE)",
    )
    serve.add_argument(
        "--bus",
        help="redis://... carries tokens and commands between the cluster's nodes "
        "(needs --store; TROUPE_BUS)",
    )
    serve.add_argument(
        "--lease-ttl",
        type=float,
        help="seconds a node holds its chats without renewing, in a cluster (default 10; "
        "TROUPE_LEASE_TTL)",
    )
    _model_flags(serve)

    imports = commands.add_parser(
        "import",
        help="import character cards, lorebooks and SillyTavern chats into the data folder",
        description="Import each file in its own transaction: a character card (PNG, APNG, "
        "JSON V1/V2/V3, CHARX), a lorebook (SillyTavern world info, lorebook_v3) or a "
        "SillyTavern chat (.jsonl). Prints one line per file; exits 1 if any failed.",
    )
    imports.add_argument("files", nargs="+", metavar="FILE", help="the files to import")
    imports.add_argument(
        "--data", help="data folder (default: a per-user data folder; TROUPE_DATA)"
    )

    replay = commands.add_parser("replay", help="run a scripted dialogue headless")
    replay.add_argument("script", help="a dialogue script (TOML)")
    replay.add_argument("--db", help="database file to keep (default: a temporary one)")
    replay.add_argument("--quiet", action="store_true", help="print only failures")
    return parser


def _model_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--backend",
        choices=["local", "openai", "scripted"],
        help="the model: embedded (local, the default), an OpenAI-compatible server, "
        "or scripted replies (TROUPE_BACKEND)",
    )
    parser.add_argument(
        "--base-url",
        help="OpenAI-compatible server, e.g. http://host:8000/v1 (TROUPE_BASE_URL)",
    )
    parser.add_argument("--model", help="narrative model name (TROUPE_MODEL)")
    parser.add_argument(
        "--classifier-model",
        help="classifier model (default: --model; TROUPE_CLASSIFIER_MODEL)",
    )
    parser.add_argument(
        "--script", help="scripted replies file (with --backend scripted; TROUPE_SCRIPT)"
    )
    parser.add_argument(
        "--max-connections",
        type=int,
        help="concurrent model requests (default 4; TROUPE_MAX_CONNECTIONS)",
    )
    parser.add_argument(
        "--json-mode",
        help="how an openai server is asked for classifier JSON: schema (response_format "
        "json_schema), object (json_object), none (the schema in the prompt only), or auto, "
        "the default: schema, stepping down for good when the server refuses "
        "(TROUPE_JSON_MODE)",
    )


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    """Entry point of the ``troupe`` command; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    environ = os.environ if env is None else env
    if args.command == "serve":
        from ._serve import run_serve

        status: int = run_serve(args, environ)
        return status
    if args.command == "import":
        from ._import import run_import

        status = run_import(args, environ)
        return status
    if args.command == "replay":
        from ._replay import run_replay

        status = run_replay(args, environ)
        return status
    parser.print_help()
    return 2


if __name__ == "__main__":
    sys.exit(main())
