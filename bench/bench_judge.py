"""Who can tell a kind line from a cruel one: the embedded model, or the sentiment lexicon.

Ten lines Wren says to Mira, five warm and five hostile (none of them the
quality benchmark's), are judged twice: by the embedded model (the ``local``
backend), asked in a grammar-constrained prompt with three worked examples
for one word (``warmer``, ``same`` or ``colder``), and by troupe's lexicon
(``story.tone``). For each: the share judged in the line's direction, and
the model's seconds a call.

    python bench/bench_judge.py [--tree PATH] [--label NAME] [--threads N]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _report import report  # noqa: E402

LINES = (
    ("Thank you, Mira, that's very kind of you. I love this place.", 1),
    ("You're a good friend. I'm glad I came here tonight.", 1),
    ("I brought you flowers from the market, I hope you like them.", 1),
    ("Your stew is the best I have ever tasted, honestly.", 1),
    ("I trust you completely. You've always been honest with me.", 1),
    ("You're a liar and a cheat. I should never have come here.", -1),
    ("Shut up. Your ale tastes like dishwater and you know it.", -1),
    ("I'll burn this tavern to the ground if you cross me again.", -1),
    ("You stole my purse, you filthy thief.", -1),
    ("I don't trust a word you say. Get out of my way.", -1),
)
SYSTEM = (
    "You judge how a character's feelings change. Answer with JSON: "
    '{"feeling": "warmer"} or {"feeling": "colder"} or {"feeling": "same"}.\n\n'
    'Example: Wren said to Mira: "Thanks, you\'re wonderful." -> {"feeling": "warmer"}\n'
    'Example: Wren said to Mira: "You disgust me, you fool." -> {"feeling": "colder"}\n'
    'Example: Wren said to Mira: "What time is it?" -> {"feeling": "same"}\n'
)
SCHEMA = {
    "type": "object",
    "properties": {"feeling": {"type": "string", "enum": ["warmer", "same", "colder"]}},
    "required": ["feeling"],
    "additionalProperties": False,
}
SIGN = {"warmer": 1, "same": 0, "colder": -1}


async def judge(threads: int | None) -> list[dict[str, Any]]:
    from llm import ClassifierRequest, LocalBackend, ModelSettings
    from protocol import PromptMessage
    from story import tone

    backend = LocalBackend(ModelSettings(threads=threads))
    rows = []
    try:
        for line, direction in LINES:
            question = f'Wren said to Mira: "{line}" How does Mira feel about Wren now?'
            messages = (PromptMessage("system", SYSTEM), PromptMessage("user", question))
            started = time.perf_counter()
            answer = await backend.complete_json(
                ClassifierRequest("feeling", messages, SCHEMA, max_tokens=20)
            )
            seconds = time.perf_counter() - started
            said = str(answer.get("feeling", "same"))
            words = tone(line).warmth
            rows.append(
                {
                    "line": line,
                    "direction": direction,
                    "model": said,
                    "model_right": SIGN.get(said, 0) == direction,
                    "lexicon": words,
                    "lexicon_right": (words > 0) - (words < 0) == direction,
                    "seconds": round(seconds, 2),
                }
            )
            print(f"{direction:+d} model {said:6} lexicon {words:+d}  {line}", flush=True)
    finally:
        await backend.aclose()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tree", type=Path, default=HERE.parent)
    parser.add_argument("--label", default="")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    sys.path.insert(0, str(args.tree.resolve()))

    import trio

    rows = trio.run(judge, args.threads)
    model = sum(r["model_right"] for r in rows) / len(rows)
    lexicon = sum(r["lexicon_right"] for r in rows) / len(rows)
    # The first call loads the model: the median says what a call costs.
    seconds = sorted(r["seconds"] for r in rows)[len(rows) // 2]
    report(
        "judge" + (f"_{args.label}" if args.label else ""),
        [
            ("lines", str(len(rows))),
            ("judged in the line's direction, model", f"{model:.0%}"),
            ("judged in the line's direction, lexicon", f"{lexicon:.0%}"),
            ("model answers", str(sorted({r["model"] for r in rows}))),
            ("model seconds a call, median", f"{seconds:.2f}"),
        ],
        {"model_share": model, "lexicon_share": lexicon, "median_seconds": seconds, "rows": rows},
    )


if __name__ == "__main__":
    main()
