"""Classifier cost per turn as the cast grows, and how close settling comes to the ideal.

The real engine runs against the OpenAI-compatible test server on loopback,
through the real ``openai`` backend, with casts of 2, 4 and 8 characters and
the person. Each turn names nobody, so one character answers and nobody
interjects (the ranking says nobody). Per turn it reports the classifier
calls the model served (state updates, the interjection ranking, and the
background significance score) and the time from the end of the beat to
``turn_settled`` against the ideal ceil(calls / C) x L, where C is the
connection cap and L the classifier latency. Target: ratio <= 1.2 at C = 4.
"""

from __future__ import annotations

import math
import statistics
import sys
import tempfile
from pathlib import Path

import trio

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _report import report  # noqa: E402
from _turns import classifier_calls, last_beat_to_settled  # noqa: E402

from actors import EngineSettings, open_engine  # noqa: E402
from llm import ModelSettings, Timeouts  # noqa: E402
from tests.support.openai_server import OpenAIServer, run_openai_server  # noqa: E402

CAP = 4
LATENCY = 0.1
CASTS = (2, 4, 8)
TURNS = 6
NAMES = ("Mira", "Ada", "Tobin", "Wren", "Oss", "Bram", "Juno", "Pell")


def model_settings(url: str) -> ModelSettings:
    return ModelSettings(
        backend="openai",
        base_url=url,
        model="bench",
        max_connections=CAP,
        timeouts=Timeouts(connect=5, first_token=10, stall=10, total=60),
    )


async def one_cast(server: OpenAIServer, size: int, tmp: Path) -> dict[str, object]:
    settings = EngineSettings(
        db_path=tmp / f"ensemble{size}.db", data_dir=tmp, narrative=model_settings(server.url)
    )
    ratios: list[float] = []
    calls: list[int] = []
    async with open_engine(settings) as engine:
        ids = [(await engine.create_bot(n, f"{n} drinks here.", "")).id for n in NAMES[:size]]
        chat = (await engine.create_chat(None, cast=tuple(ids))).id
        async with engine.watch(chat) as messages:
            await messages.__anext__()
            for _ in range(TURNS):
                await engine.idle()
                since = len(server.requests)
                await engine.send_turn(chat, '"Evening."')
                spent = await last_beat_to_settled(messages)
                await engine.idle()  # the background significance score lands too
                made = classifier_calls(server, since)
                # The significance score runs in the background, after settling.
                in_settle = made - 1
                calls.append(made)
                ratios.append(spent / (math.ceil(in_settle / CAP) * LATENCY))
    return {
        "characters": size,
        "present": size + 1,
        "classifier_calls_per_turn": statistics.median(calls),
        "pairwise_calls_per_turn_before": (size + 1) * size + (size - 1) + 1,
        "settle_ratio_median": statistics.median(ratios),
    }


async def main() -> None:
    async with run_openai_server() as server:
        server.script.text = "Mira nods and pours."
        server.script.content = (
            '{"edges": {}, "ranking": [], "reason": "", "significance": 0, '
            '"affinity_delta": 0, "trust_delta": 0, "knowledge_facts": []}'
        )
        server.script.classifier_delay = LATENCY
        with tempfile.TemporaryDirectory() as tmp:
            results = [await one_cast(server, size, Path(tmp)) for size in CASTS]
    rows = []
    for r in results:
        rows.append(
            (
                f"{r['characters']} characters + you: classifier calls a turn (before)",
                f"{r['classifier_calls_per_turn']} ({r['pairwise_calls_per_turn_before']})",
            )
        )
        rows.append(
            (
                f"{r['characters']} characters: settle vs ideal, cap {CAP} (target <= 1.2)",
                f"{r['settle_ratio_median']:.2f}x",
            )
        )
    report("ensemble", rows, {"cap": CAP, "latency_s": LATENCY, "casts": results})


if __name__ == "__main__":
    trio.run(main)
