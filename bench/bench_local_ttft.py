"""Time to first token on the embedded model, late in a chat against early in it.

One scripted chat of 30 exchanges between Ana and Mira: Ana's prose and
Mira's earlier beats are fixed text (so every run reads the same prompts),
and Mira's relationship and memories change on every turn, as they do in a
chat. Each beat's prompt is built by ``story.assemble_prompt`` with the
default budgets (20 turns of dialogue, 1,600/2,400 tokens), and before each
beat one classifier call runs on the same model, as a turn's passes do: it
takes over the model's context, which is what made every beat of a long chat
read its whole prompt again.

It measures, in one run, each in a process of its own, one after the other:

- ``after``: this tree, every turn from 1 to 30 (the prefix cache needs the
  chat's history); TTFT of turn 2 and turn 30, the median of turns 25-30, and
  how many prompt tokens the worker reused;
- ``cache off``: this tree with ``prefix_cache_bytes=0`` at turns 2 and 30;
- ``before``: with ``--before DIR``, the previous release's source tree
  (its own prompt layout and in-process backend) at turns 2 and 30.

Goal: turn 30 within 1.5x of turn 2, and at least 5x faster than before.
Run it with the machine otherwise idle: prompt reading takes both cores.

    python bench/bench_local_ttft.py [--before DIR] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

TURNS = 30
WINDOW = 20
"""Turns of dialogue a prompt reads (``Budgets.recent_turns``)."""
IDS_PER_EXCHANGE = 10
"""Event ids an exchange takes: Ana's turn, Mira's beat, the passes' events."""

_ASKS = (
    "Evening, Mira. Is the back room still free, or has the harbour crowd taken it?",
    "*I set my wet coat by the fire.* The storm came in fast. Did the boats get back?",
    "Have you seen a tall man with a scar over one eye? He came in on the Heron.",
    "*I slide a brass key across the bar.* Recognise this? It was in my brother's coat.",
    "You keep looking at the door. Who are you expecting tonight?",
    "I can pay for the room now, and for the silence too, if that's what it costs.",
)
_BEATS = (
    '*Mira wipes the same spot on the counter twice before she looks up.* "The back room '
    "is free for now. The harbour crowd drinks out front where they can watch the water, and "
    'nobody who wants a quiet word ever asks for the back room by name."',
    '*She pours two fingers of rum without being asked and pushes the glass over.* "Most of '
    "them. The Gull is still out past the breakwater, and her captain never did have the sense "
    'to turn for home when the gulls went quiet."',
    '*Her hand stops on the tap.* "Scars are cheap on this coast. Half the men who come off '
    "the Heron have one somewhere. Ask me about something that costs less to remember, and I "
    'might remember it."',
    '*Mira turns the key over once, then sets it down as if it were hot.* "Room nine, upstairs, '
    "at the Salt House across the square. They stopped making those keys years ago. Where did "
    'you say you found it?"',
    '*A small laugh, without much in it.* "Everyone who opens that door is someone I am '
    "expecting, one way or another. Tonight it might be the harbour master, and he does not "
    'like to find strangers at my bar."',
    '*She lets the coins sit where they are.* "Keep your money until you know what you are '
    "buying. Silence is the one thing in this tavern I do not sell by the glass, and the people "
    'who ask for it usually need something else."',
)

SCHEMA = {
    "type": "object",
    "properties": {"significance": {"type": "integer", "minimum": 0, "maximum": 3}},
    "required": ["significance"],
}


def _texts(exchange: int) -> tuple[str, str]:
    """Ana's prose and Mira's beat of one exchange (1-based), fixed for every run."""
    i = (exchange - 1) % len(_ASKS)
    return f"{_ASKS[i]} ({exchange})", _BEATS[(exchange * 5) % len(_BEATS)]


def _window(story: Any, turns: list[Any]) -> tuple[Any, ...]:
    """The turns a prompt reads: this tree's block window, or the previous release's last 20."""
    if hasattr(story, "stable_window"):
        return tuple(story.stable_window(turns, WINDOW))
    return tuple(turns[-WINDOW:])


def _request(n: int) -> tuple[Any, Any]:
    """Turn ``n``'s narrative request and the classifier call before it (the passes)."""
    import attrs

    import story
    from llm import ClassifierRequest, Message, NarrativeRequest
    from protocol import Bot, Edge, Entity, Memory, Turn

    mira = Bot(
        "mira",
        "Mira",
        "Mira keeps the bar at the Gilded Eel, a harbour tavern. Dry, observant, slow to "
        "trust, quick to notice who pays and who lies. She has run the place for twenty years "
        "and knows every captain on the coast by their drink.",
        "",
    )
    ana = Entity("you", "Ana", "A sailor from the north, looking for her missing brother.")
    turns = []
    for k in range(1, n):
        prose, beat = _texts(k)
        turns.append(Turn(k * IDS_PER_EXCHANGE, "user", "you", prose, False, None, k * 10))
        turns.append(Turn(k * IDS_PER_EXCHANGE + 1, "assistant", "mira", beat, False, None, k))
    prose, _ = _texts(n)
    inputs = story.PromptInputs(
        speaker=mira,
        you=ana,
        prose=prose,
        location="The Gilded Eel",
        edges=(Edge("mira", "you", 50 + n % 40, 30 + n % 20, "Ana asks a lot.", ()),),
        relevant=tuple(
            Memory(m, "mira", "c1", f"Ana mentioned her brother on turn {m}.", 2, False)
            for m in range(max(1, n - 3), n)
        ),
        dialogue=_window(story, turns),
        soft_budget=1600,
        hard_budget=2400,
    )
    prompt = story.assemble_prompt(inputs)
    extra: dict[str, Any] = {}
    fields = {f.name for f in attrs.fields(NarrativeRequest)}
    if "cache_key" in fields:
        extra = {"cache_key": "bench", "notes_from": prompt.notes_from, "current": prompt.current}
    narrative = NarrativeRequest(
        tuple(prompt.messages), speaker="Mira", max_tokens=8, temperature=0.0, **extra
    )
    said = _texts(n - 1)[1] if n > 1 else "Mira greets Ana."
    classifier = ClassifierRequest(
        "significance",
        (
            Message("system", "Rate how much this line matters to the story, 0 to 3."),
            Message("user", said),
        ),
        SCHEMA,
        max_tokens=16,
    )
    return narrative, classifier


async def _drive(measure: list[int], threads: int, cache: int | None) -> dict[str, Any]:
    from llm import LocalBackend, ModelSettings

    extra = {} if cache is None else {"prefix_cache_bytes": cache}
    backend = LocalBackend(ModelSettings(threads=threads, **extra))
    out: dict[str, Any] = {"ttft": {}, "prompt_tokens": {}, "reused_tokens": {}}
    try:
        last = max(measure)
        every = cache is None or cache > 0
        for n in range(1, last + 1):
            if n not in measure and not (every and "cache_key" in _fields()):
                continue
            narrative, classifier = _request(n)
            await backend.complete_json(classifier)
            began = time.perf_counter()
            first = None
            async with backend.stream(narrative) as chunks:
                async for _ in chunks:
                    first = time.perf_counter() - began
                    break
            if n in measure and first is not None:
                out["ttft"][str(n)] = first
                stats = _figures(backend)
                if "last_prompt_tokens" in stats:
                    out["prompt_tokens"][str(n)] = stats["last_prompt_tokens"]
                    out["reused_tokens"][str(n)] = stats["last_reused_tokens"]
        stats = _figures(backend)
        out["cache_bytes"] = stats.get("cache_bytes")
        out["cache_hits"] = stats.get("cache_hits")
    finally:
        await backend.aclose()
    return out


def _figures(backend: Any) -> dict[str, Any]:
    """The backend's statistics as a dict (the previous release returned one already)."""
    import attrs

    stats = backend.statistics()
    return attrs.asdict(stats) if attrs.has(type(stats)) else dict(stats)


def _fields() -> set[str]:
    import attrs

    from llm import NarrativeRequest

    return {f.name for f in attrs.fields(NarrativeRequest)}


def _child(args: argparse.Namespace) -> None:
    import trio

    measure = [int(t) for t in args.turns.split(",")]
    result = trio.run(_drive, measure, args.threads, args.cache)
    print(json.dumps(result))


def _start(tree: Path, turns: list[int], threads: int, cache: int | None) -> subprocess.Popen[str]:
    """One measurement in a process of its own, with ``tree`` first on the import path."""
    env = dict(os.environ, PYTHONPATH=str(tree))
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        "--turns",
        ",".join(map(str, turns)),
        "--threads",
        str(threads),
    ]
    if cache is not None:
        command += ["--cache", str(cache)]
    return subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _result(name: str, run: subprocess.Popen[str]) -> dict[str, Any]:
    out, err = run.communicate()
    if run.returncode != 0:
        raise SystemExit(f"the {name} run failed:\n{err[-2000:]}")
    line = out.strip().splitlines()[-1]
    print(f"{name}: {line}", flush=True)  # kept even if a later run fails
    result: dict[str, Any] = json.loads(line)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--before", type=Path, help="the previous release's source tree")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--turns", default="", help=argparse.SUPPRESS)
    parser.add_argument("--cache", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args)
        return

    sys.path.insert(0, str(ROOT / "bench"))
    from _report import report

    # One after the other: each has both cores (llama.cpp's threads spin while they wait).
    plan: list[tuple[str, Path, list[int], int | None]] = [
        ("after", ROOT, list(range(1, TURNS + 1)), None),
        ("cache off", ROOT, [2, TURNS], 0),
    ]
    if args.before:
        plan.append(("before", args.before, [2, TURNS], None))
    results = {
        name: _result(name, _start(tree, turns, args.threads, cache))
        for name, tree, turns, cache in plan
    }
    after, off, before = results["after"], results["cache off"], results.get("before")

    def ms(seconds: float) -> str:
        return f"{seconds * 1000:.0f} ms"

    # Prompt tokens read (not reused): what the wait is made of, and, unlike a time, the
    # same in every run.
    read = {int(n): after["prompt_tokens"][n] - after["reused_tokens"][n] for n in after["ttft"]}
    late_read = [read[n] for n in range(12, TURNS + 1)]
    ttft = after["ttft"]
    late = statistics.median(ttft[str(n)] for n in range(25, TURNS + 1))
    t2, t30 = ttft["2"], ttft[str(TURNS)]
    rows = [
        ("after: turn 2", ms(t2)),
        (f"after: turn {TURNS}", ms(t30)),
        (f"after: turn {TURNS} / turn 2", f"{t30 / t2:.2f}x (goal <= 1.5x)"),
        ("after: median of turns 25-30", ms(late)),
        (
            f"after: turn {TURNS} prompt tokens reused",
            f"{after['reused_tokens'][str(TURNS)]} of {after['prompt_tokens'][str(TURNS)]}",
        ),
        ("after: tokens read at turn 2", str(read[2])),
        (f"after: tokens read at turn {TURNS}", f"{read[TURNS]} ({read[TURNS] / read[2]:.2f}x)"),
        (
            f"after: tokens read, turns 12-{TURNS}",
            f"mean {statistics.mean(late_read):.0f}, most {max(late_read)}",
        ),
        ("cache off: turn 2", ms(off["ttft"]["2"])),
        (f"cache off: turn {TURNS}", ms(off["ttft"][str(TURNS)])),
    ]
    figures: dict[str, Any] = {
        "turns": TURNS,
        "threads": args.threads,
        "after": after,
        "cache_off": off,
        "turn30_over_turn2": t30 / t2,
        "median_25_30_ms": late * 1000,
        "tokens_read": read,
    }
    if before is not None:
        b30 = before["ttft"][str(TURNS)]
        rows += [
            ("before: turn 2", ms(before["ttft"]["2"])),
            (f"before: turn {TURNS}", ms(b30)),
            (f"before / after at turn {TURNS}", f"{b30 / t30:.1f}x (goal >= 5x)"),
        ]
        figures["before"] = before
        figures["speedup_turn30"] = b30 / t30
    report("local_ttft", rows, figures)


if __name__ == "__main__":
    main()
