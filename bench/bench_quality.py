"""How the embedded model's turns read and move: lines spoken for others, loops, relationships.

The demo world a first start seeds (``troupe/_demo.py``: Wren, with Mira and
Tobias at the Gilded Eel) plays a scripted scene of twenty turns through the
real engine on the real embedded model (the ``local`` backend), beats and
classifiers alike, from the source tree given with ``--tree`` (this one by
default). The scene turns: Wren's first ten lines to Mira are warm (thanks,
praise, a gift, a confidence), the last ten hostile (accusations, insults, a
threat). For every committed beat it counts:

- a line spoken for someone else: a line that opens with another present
  speaker's name as a speaker tag (``Name:``, ``- Name:``, ``**Name:**``,
  ``Name (softly):``, ``Name - ``...), found by a regular expression of its
  own, independent of the code under test;
- a sentence repeated verbatim inside the beat, and a sentence said
  verbatim earlier in the scene (an echo of the person's line or a loop
  across beats);
- the prompt's own instructions (``# How to write`` and its rules) or its
  markdown headings (a line opening with ``#``);
- how it ended: at the token cap (``length``), mid-word, or as streamed.

For every turn: whether the host's affinity toward Wren moved in the
direction of the line (up after a warm one, down after a hostile one; no
move is a miss), and how long the turn took to settle after its last beat
ended (``settle_after_beat_s``: the passes the person waits for). For every
classifier call: whether it fell back to its default (the call failed or
timed out), counted by a wrapper around the backend, outside the code under
test.

Not a pass/fail test: the model samples at the beat's temperature, so the
figures move from run to run; compare runs of the same size.

    python bench/bench_quality.py [--tree PATH] [--label NAME] [--turns N] [--model-path GGUF]
                                  [--cast three|two] [--threads N]

``--cast two`` plays the same lines in the one-to-one chat (Wren and Mira).
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _report import report  # noqa: E402

WARM = (
    "Mira, thank you for letting me in out of the rain. You're very kind.",
    '*I smile and sit at the bar.* "This is the warmest welcome I have had in weeks."',
    "Your stew is wonderful. Honestly, the best I have ever tasted.",
    '*I set a small wrapped parcel on the counter.* "A gift for you, from the market."',
    "I trust you, Mira. You have always been honest with me.",
    "I'm so glad we met. You're a true friend.",
    '*I laugh along with you.* "You make this old harbour feel like home."',
    "Thank you for helping me last winter. I will never forget it.",
    "I promise I'll keep your secret safe. You can rely on me.",
    '*I raise my glass to you.* "To Mira, the kindest soul in the harbour!"',
)
HOSTILE = (
    "You lied to me, Mira. You knew about the ship all along.",
    '*I slam my fist on the counter.* "You filthy cheat, you watered the ale!"',
    "I don't trust a word you say anymore, you liar.",
    "You stole my map while I slept, didn't you? Thief.",
    '*I glare at you.* "You\'re a coward and a fool."',
    "I despise this place and everyone in it.",
    '*I sneer.* "Your stew tastes like rot. It\'s disgusting."',
    "Cross me again and I'll burn this tavern to the ground.",
    "You betrayed me to the harbour watch, you traitor.",
    '*I spit on the floor.* "I hate you. Get out of my way."',
)
LINES = tuple((line, 1) for line in WARM) + tuple((line, -1) for line in HOSTILE)
"""The scene: each line and its direction (1 warm, -1 hostile)."""


def scene_lines(turns: int) -> tuple[tuple[str, int], ...]:
    """The first ``turns`` lines of the scene, half warm then half hostile (so a short run
    still turns)."""
    warm = (turns + 1) // 2
    return LINES[: min(warm, len(WARM))] + LINES[len(WARM) : len(WARM) + turns - warm]


SENTENCE = re.compile(r"[^.!?\n]+[.!?]+")
INSTRUCTIONS = (
    "how to write",
    "stay in character",
    "never write for",
    "double quotes",
    "the story so far",
    "\n---",
)
HEADING = re.compile(r"^#+ ", re.MULTILINE)


def foreign_line(text: str, others: list[str]) -> bool:
    """A line of ``text`` opens with another speaker's tag."""
    names = "|".join(re.escape(n) for n in others)
    tag = re.compile(
        rf"^[\s>*_\"'“\[(#•-]*(?:{names})(?![\w'])[*_\"”\])]*\s*(?:\([^)\n]{{0,80}}\))?[*_\s]*"
        r"(?::|\s[-–—]\s)",
        re.IGNORECASE | re.MULTILINE,
    )
    return tag.search(text) is not None


def sentences(text: str) -> list[str]:
    """The sentences of three words or more, whitespace and case folded."""
    found = (" ".join(m.group().split()).lower() for m in SENTENCE.finditer(text))
    return [s for s in found if len(s.split()) >= 3]


def repeats(text: str) -> bool:
    """A sentence appears twice, verbatim, in ``text``."""
    said = sentences(text)
    return len(set(said)) < len(said)


def echoes(text: str, earlier: list[str]) -> bool:
    """A sentence of ``text`` was said, verbatim, earlier in the scene (by anyone)."""
    before = {s for line in earlier for s in sentences(line)}
    return any(s in before for s in sentences(text))


def mid_word(text: str) -> bool:
    """The beat ends inside a word (a letter last, and no sentence end)."""
    stripped = text.rstrip()
    return bool(stripped) and stripped[-1].isalnum()


def count_calls(backend: Any, calls: Counter[str], failed: Counter[str]) -> None:
    """Count ``backend``'s classifier calls by name, and those that raised or were cut off.

    The instance's own method is wrapped, so the engine still sees the backend it is.
    """
    inner = backend.complete_json

    async def complete_json(request: Any) -> dict[str, Any]:
        calls[request.name] += 1
        answered = False
        try:
            answer: dict[str, Any] = await inner(request)
            answered = True
            return answer
        finally:
            if not answered:  # the pool gives this call's default
                failed[request.name] += 1

    backend.complete_json = complete_json


def affinity(state: Any, source: str, target: str) -> int:
    """The edge source -> target's affinity in a chat state (50 for an edge never touched)."""
    return next(
        (e.affinity for e in state.edges if e.source_id == source and e.target_id == target), 50
    )


async def scene(
    turns: int,
    model_path: str | None,
    cast: str,
    calls: Counter[str],
    failed: Counter[str],
    threads: int | None = None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A chat of the demo world (``three``: "Three at the bar", ``two``: "Rain at the
    Gilded Eel"), ``turns`` scripted lines; every beat, and every turn's figures."""
    import trio

    from actors import EngineSettings, open_engine
    from llm import LocalBackend, ModelSettings
    from protocol import BeatComplete, Token, TurnSettled
    from troupe._demo import seed_demo

    beats: list[dict[str, Any]] = []
    moves: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as folder:
        data = Path(folder)
        model = ModelSettings(
            model_path=model_path, cache_dir=str(data / "cache"), threads=threads
        )
        local = LocalBackend(model)
        count_calls(local, calls, failed)
        settings = EngineSettings(db_path=data / "troupe.db", data_dir=data, narrative=model)
        try:
            async with open_engine(settings, narrative=local, classifier=local) as engine:
                await seed_demo(engine)
                you = await engine.you()
                chat = next(
                    c
                    for c in await engine.list_chats()
                    if bool(c.guest_bot_id) == (cast == "three")
                )
                host = chat.host_bot_id
                names = {b.id: b.name for b in await engine.list_bots()}
                said = [b.greeting for b in await engine.list_bots() if b.id == host]
                before = affinity(await engine.chat_state(chat.id), host, you.id)
                async with engine.watch(chat.id) as messages:
                    for prose, direction in scene_lines(turns):
                        await engine.send_turn(chat.id, prose)
                        said.append(prose)
                        streamed: dict[int, list[str]] = {}
                        started = time.perf_counter()
                        ended = started
                        with trio.fail_after(1800):
                            async for message in messages:
                                if isinstance(message, Token):
                                    streamed.setdefault(message.beat_id, []).append(message.text)
                                elif isinstance(message, BeatComplete) and message.seq > 0:
                                    ended = time.perf_counter()
                                    speaker = names[message.speaker_id]
                                    tokens = "".join(streamed.get(message.beat_id, []))
                                    beats.append(
                                        {
                                            "speaker": speaker,
                                            "others": [
                                                you.name,
                                                *(n for n in names.values() if n != speaker),
                                            ],
                                            "text": message.text,
                                            "earlier": list(said),
                                            "truncated": message.truncated,
                                            "error": message.error,
                                            "streamed_equals_committed": tokens == message.text,
                                            "seconds": round(ended - started, 1),
                                        }
                                    )
                                    said.append(message.text)
                                    print(f"{speaker}: {message.text[:100]!r}", flush=True)
                                elif isinstance(message, TurnSettled):
                                    break
                        settled = time.perf_counter()
                        now = affinity(await engine.chat_state(chat.id), host, you.id)
                        moves.append(
                            {
                                "direction": direction,
                                "affinity_before": before,
                                "affinity_after": now,
                                "with_scene": (now - before) * direction > 0,
                                "settle_after_beat_s": round(settled - ended, 2),
                            }
                        )
                        print(
                            f"  host -> {you.name}: {before} -> {now} "
                            f"(scene {'+' if direction > 0 else '-'}), "
                            f"settled {settled - ended:.1f} s after the beat",
                            flush=True,
                        )
                        before = now
        finally:
            await local.aclose()
    return beats, moves


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else 0.0


def share(flags: list[bool]) -> float:
    return round(sum(flags) / len(flags), 3) if flags else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tree", type=Path, default=HERE.parent)
    parser.add_argument("--label", default="")
    parser.add_argument("--turns", type=int, default=len(LINES))
    parser.add_argument("--model-path", default=None)
    parser.add_argument("--cast", choices=("three", "two"), default="three")
    parser.add_argument(
        "--threads", type=int, default=None, help="the model's threads (default: every core)"
    )
    args = parser.parse_args()
    root = args.tree.resolve()
    sys.path.insert(0, str(root))

    import trio

    start = time.perf_counter()
    logging.getLogger("troupe").setLevel(logging.ERROR)  # classifiers' defaults are counted
    calls: Counter[str] = Counter()
    failed: Counter[str] = Counter()
    beats, moves = trio.run(
        scene, min(args.turns, len(LINES)), args.model_path, args.cast, calls, failed, args.threads
    )
    elapsed = time.perf_counter() - start
    foreign = [foreign_line(b["text"], b["others"]) for b in beats]
    looping = [repeats(b["text"]) for b in beats]
    echoing = [echoes(b["text"], b["earlier"]) for b in beats]
    leaked = [
        any(i in b["text"].lower() for i in INSTRUCTIONS) or HEADING.search(b["text"]) is not None
        for b in beats
    ]
    capped = [b["error"] == "length" for b in beats]
    broken = [mid_word(b["text"]) for b in beats]
    equal = [b["streamed_equals_committed"] for b in beats]
    along = [m["with_scene"] for m in moves]
    arc = "/".join(str(x) for x in (moves[0]["affinity_before"], moves[-1]["affinity_after"]))
    arc += " (after " + " ".join(f"{m['affinity_after']}" for m in moves) + ")"
    fell_back = sum(failed.values()) / sum(calls.values()) if calls else 0.0
    settles = [m["settle_after_beat_s"] for m in moves]
    settle_p50, settle_max = percentile(settles, 0.5), max(settles, default=0.0)
    name = "quality" + ("" if args.cast == "three" else f"_{args.cast}")
    name += f"_{args.label}" if args.label else ""
    report(
        name,
        [
            ("tree", str(root)),
            ("chat", args.cast),
            ("model threads", str(args.threads or "every core")),
            ("beats", str(len(beats))),
            ("beats with another speaker's line", f"{share(foreign):.0%}"),
            ("beats repeating a sentence verbatim", f"{share(looping):.0%}"),
            ("beats repeating an earlier line's sentence", f"{share(echoing):.0%}"),
            ("beats showing the prompt's rules or headings", f"{share(leaked):.0%}"),
            ("beats ended at the token cap (length)", f"{share(capped):.0%}"),
            ("beats ending mid-word", f"{share(broken):.0%}"),
            ("beats streamed == committed", f"{share(equal):.0%}"),
            ("turns", str(len(moves))),
            ("turns whose affinity moves with the scene", f"{share(along):.0%}"),
            ("host's affinity toward the person, first/last", arc),
            ("classifier calls", f"{sum(calls.values())} {dict(calls)}"),
            ("classifier calls that fell back to their default", f"{fell_back:.0%}"),
            ("settle after the beat, p50 / max (s)", f"{settle_p50:.1f} / {settle_max:.1f}"),
            ("seconds", f"{elapsed:.0f}"),
        ],
        {
            "tree": str(root),
            "cast": args.cast,
            "beats": len(beats),
            "foreign_line_share": share(foreign),
            "repeat_share": share(looping),
            "echo_share": share(echoing),
            "instructions_share": share(leaked),
            "length_share": share(capped),
            "mid_word_share": share(broken),
            "streamed_equals_committed_share": share(equal),
            "turns": len(moves),
            "affinity_with_scene_share": share(along),
            "classifier_calls": dict(calls),
            "classifier_fallbacks": dict(failed),
            "classifier_fallback_share": round(fell_back, 3),
            "settle_after_beat_s_p50": settle_p50,
            "settle_after_beat_s_max": settle_max,
            "turn_figures": moves,
            "seconds": round(elapsed, 1),
            "texts": [{k: b[k] for k in ("speaker", "text", "truncated", "error")} for b in beats],
        },
    )


if __name__ == "__main__":
    main()
