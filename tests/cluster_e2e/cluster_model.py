"""The OpenAI-compatible test server as a process of its own, for the cluster's nodes.

The nodes live longer than one test (one cluster serves a whole module),
so their model does too. Every beat streams the same long line at a steady
rate, long enough that a test can kill, pause or cut something under it::

    python -m tests.cluster_e2e.cluster_model --rate 40 --words 80

prints one JSON line, ``{"url": ...}``, once it listens, then serves until killed.
"""

from __future__ import annotations

import argparse
import json

import trio

from tests.support.openai_server import run_openai_server


def beat_text(words: int) -> str:
    """The line every beat streams: words that never repeat, so every prefix is its own."""
    return "Mira counts the lamps: " + " ".join(f"lamp{i}" for i in range(words))


async def serve(rate: float, words: int) -> None:
    async with run_openai_server() as server:
        server.script.text = beat_text(words)
        server.script.rate = rate
        print(json.dumps({"url": server.url}), flush=True)
        await trio.sleep_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=float, default=40.0, help="tokens a second")
    parser.add_argument("--words", type=int, default=80, help="words of every beat")
    args = parser.parse_args()
    trio.run(serve, args.rate, args.words)


if __name__ == "__main__":
    main()
