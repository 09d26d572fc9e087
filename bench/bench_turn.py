"""The turn's own overhead, against the model's own latency measured in the same run.

Both parts run the real engine against the OpenAI-compatible test server on
loopback, through the real ``openai`` backend.

(a) Time to first token at a subscriber minus the backend's own time to first
    token (measured by a bare client of the same server): what the turn adds
    before the first token. Target: median <= 5 ms.
(b) Time from the last token to ``turn_settled`` with classifier latency L and
    connection cap C, against the ideal ceil(calls / C) x L. Target <= 1.2.
"""

from __future__ import annotations

import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

import trio

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _report import report  # noqa: E402
from _turns import classifier_calls, last_beat_to_settled  # noqa: E402

from actors import EngineSettings, open_engine  # noqa: E402
from llm import Message, ModelSettings, NarrativeRequest, OpenAIBackend, Timeouts  # noqa: E402
from protocol import Token, TurnSettled  # noqa: E402
from tests.support.openai_server import OpenAIServer, run_openai_server  # noqa: E402

FIRST_TOKEN = 0.05
TURNS = 30


def model_settings(url: str, cap: int) -> ModelSettings:
    return ModelSettings(
        backend="openai",
        base_url=url,
        model="bench",
        max_connections=cap,
        timeouts=Timeouts(connect=5, first_token=10, stall=10, total=60),
    )


async def backend_ttft(url: str) -> list[float]:
    model = OpenAIBackend(model_settings(url, 4))
    samples = []
    request = NarrativeRequest((Message("user", "hi"),), speaker="Mira")
    for _ in range(TURNS):
        start = time.perf_counter()
        async with model.stream(request) as chunks:
            async for _text in chunks:
                samples.append(time.perf_counter() - start)
                break
    await model.aclose()
    return samples


async def engine_ttft(url: str, tmp: Path) -> list[float]:
    settings = EngineSettings(
        db_path=tmp / "ttft.db", data_dir=tmp, narrative=model_settings(url, 4)
    )
    samples = []
    async with open_engine(settings) as engine:
        bot = await engine.create_bot("Mira", "barkeep", "")
        chat = (await engine.create_chat(bot.id)).id
        async with engine.watch(chat) as messages:
            await messages.__anext__()
            for _ in range(TURNS):
                start = time.perf_counter()
                await engine.send_turn(chat, "Evening.")
                first = None
                async for message in messages:
                    if isinstance(message, Token) and first is None:
                        first = time.perf_counter() - start
                    if isinstance(message, TurnSettled):
                        break
                assert first is not None
                samples.append(first)
    return samples


async def settle_ratio(
    url: str, server: OpenAIServer, cap: int, latency: float, tmp: Path
) -> dict:
    settings = EngineSettings(
        db_path=tmp / f"settle{cap}.db", data_dir=tmp, narrative=model_settings(url, cap)
    )
    ratios = []
    async with open_engine(settings) as engine:
        host = await engine.create_bot("Mira", "barkeep", "")
        guest = await engine.create_bot("Tobias", "lamplighter", "")
        chat = (await engine.create_chat(host.id, guest.id)).id
        counted = []
        async with engine.watch(chat) as messages:
            await messages.__anext__()
            for _ in range(8):
                since = len(server.requests)
                await engine.send_turn(chat, "Mira, evening.")
                spent = await last_beat_to_settled(messages)
                await engine.idle()
                # Every call the turn made counts, less the significance score, which
                # runs in the background once the turn has settled.
                calls = classifier_calls(server, since) - 1
                counted.append(calls)
                ratios.append(spent / (math.ceil(calls / cap) * latency))
        calls = max(counted)
    return {
        "cap": cap,
        "latency_s": latency,
        "calls": calls,
        "ratio_median": statistics.median(ratios),
    }


async def main() -> None:
    async with run_openai_server() as server:
        server.script.first_delay = FIRST_TOKEN
        server.script.text = "Mira nods and pours."
        server.script.content = (
            '{"affinity_delta": 0, "trust_delta": 0, "knowledge_facts": [], '
            '"interject": false, "reason": "", "significance": 0}'
        )
        with tempfile.TemporaryDirectory() as tmp:
            bare = await backend_ttft(server.url)
            through = await engine_ttft(server.url, Path(tmp))
            overhead = [(b - a) * 1000 for a, b in zip(sorted(bare), sorted(through), strict=True)]
            server.script.first_delay = 0.0
            # Classifier latency: the server answers non-streamed calls after this delay.
            server.script.classifier_delay = 0.1
            settle = [
                await settle_ratio(server.url, server, cap, 0.1, Path(tmp)) for cap in (2, 4)
            ]
    median_overhead = statistics.median(overhead)
    rows = [
        (
            "backend time to first token, median (baseline)",
            f"{statistics.median(bare) * 1000:.1f} ms",
        ),
        ("subscriber time to first token, median", f"{statistics.median(through) * 1000:.1f} ms"),
        ("added by the turn, median (target <= 5 ms)", f"{median_overhead:.2f} ms"),
    ]
    for figures in settle:
        rows.append(
            (
                f"last token -> turn_settled vs ideal, cap {figures['cap']} (target <= 1.2)",
                f"{figures['ratio_median']:.2f}x",
            )
        )
    report(
        "turn",
        rows,
        {
            "backend_ttft_ms_median": statistics.median(bare) * 1000,
            "subscriber_ttft_ms_median": statistics.median(through) * 1000,
            "ttft_overhead_ms_median": median_overhead,
            "settle": settle,
        },
    )


if __name__ == "__main__":
    trio.run(main)
