"""How the embedded model's beats read: lines spoken for others, loops, leaked instructions.

The demo world a first start seeds (``troupe/_demo.py``: Wren, with Mira and
Tobias at the Gilded Eel) plays ten scripted turns of its two-character chat
on the real embedded model (the ``local`` backend) through the real engine,
from the source tree given with ``--tree`` (this one by default);
classifiers are scripted (they take their defaults), so only beats reach the
model. For every committed beat it counts:

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

Not a pass/fail test: the model samples at the beat's temperature, so the
figures move from run to run; compare runs of the same size.

    python bench/bench_quality.py [--tree PATH] [--label NAME] [--turns N] [--model-path GGUF]
                                  [--cast three|two]

``--cast two`` plays the same lines in the one-to-one chat (Wren and Mira).
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _report import report  # noqa: E402

LINES = (
    "Just drying off. What's good here?",
    '*I shake the rain off my coat and sit at the bar.* "Something warm, please."',
    "Mira, have you seen a woman in a grey cloak tonight?",
    '*I unroll a map on the counter.* "Tobias, do you know this part of the harbour?"',
    "You don't trust me much, do you?",
    "What happened at the lighthouse?",
    '*I lower my voice.* "Someone followed me from the docks."',
    "Tobias, tell me one of your legends.",
    '*I slide a coin across the counter.* "For the trouble, Mira."',
    "Is there a back door out of here?",
)

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


async def scene(turns: int, model_path: str | None, cast: str) -> list[dict[str, Any]]:
    """A chat of the demo world (``three``: "Three at the bar", ``two``: "Rain at the
    Gilded Eel"), ``turns`` scripted lines; every beat."""
    import trio

    from actors import EngineSettings, open_engine
    from llm import LocalBackend, ModelSettings, ScriptedBackend
    from protocol import BeatComplete, Token, TurnSettled
    from troupe._demo import seed_demo

    beats: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as folder:
        data = Path(folder)
        model = ModelSettings(model_path=model_path, cache_dir=str(data / "cache"))
        local = LocalBackend(model)
        scripted = ScriptedBackend()
        settings = EngineSettings(
            db_path=data / "troupe.db", data_dir=data, narrative=model, classifier_timeout=5
        )
        try:
            async with open_engine(settings, narrative=local, classifier=scripted) as engine:
                await seed_demo(engine)
                you = (await engine.you()).name
                chat = next(
                    c
                    for c in await engine.list_chats()
                    if bool(c.guest_bot_id) == (cast == "three")
                )
                names = {b.id: b.name for b in await engine.list_bots()}
                said = [b.greeting for b in await engine.list_bots() if b.id == chat.host_bot_id]
                async with engine.watch(chat.id) as messages:
                    for prose in LINES[:turns]:
                        await engine.send_turn(chat.id, prose)
                        said.append(prose)
                        streamed: dict[int, list[str]] = {}
                        started = time.perf_counter()
                        with trio.fail_after(600):
                            async for message in messages:
                                if isinstance(message, Token):
                                    streamed.setdefault(message.beat_id, []).append(message.text)
                                elif isinstance(message, BeatComplete) and message.seq > 0:
                                    speaker = names[message.speaker_id]
                                    tokens = "".join(streamed.get(message.beat_id, []))
                                    beats.append(
                                        {
                                            "speaker": speaker,
                                            "others": [
                                                you,
                                                *(n for n in names.values() if n != speaker),
                                            ],
                                            "text": message.text,
                                            "earlier": list(said),
                                            "truncated": message.truncated,
                                            "error": message.error,
                                            "streamed_equals_committed": tokens == message.text,
                                            "seconds": round(time.perf_counter() - started, 1),
                                        }
                                    )
                                    said.append(message.text)
                                    print(f"{speaker}: {message.text[:100]!r}", flush=True)
                                elif isinstance(message, TurnSettled):
                                    break
        finally:
            await local.aclose()
    return beats


def share(flags: list[bool]) -> float:
    return round(sum(flags) / len(flags), 3) if flags else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tree", type=Path, default=HERE.parent)
    parser.add_argument("--label", default="")
    parser.add_argument("--turns", type=int, default=len(LINES))
    parser.add_argument("--model-path", default=None)
    parser.add_argument("--cast", choices=("three", "two"), default="three")
    args = parser.parse_args()
    root = args.tree.resolve()
    sys.path.insert(0, str(root))

    import trio

    start = time.perf_counter()
    logging.getLogger("troupe").setLevel(logging.ERROR)  # scripted classifiers' defaults
    beats = trio.run(scene, min(args.turns, len(LINES)), args.model_path, args.cast)
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
    name = "quality" + ("" if args.cast == "three" else f"_{args.cast}")
    name += f"_{args.label}" if args.label else ""
    report(
        name,
        [
            ("tree", str(root)),
            ("chat", args.cast),
            ("beats", str(len(beats))),
            ("beats with another speaker's line", f"{share(foreign):.0%}"),
            ("beats repeating a sentence verbatim", f"{share(looping):.0%}"),
            ("beats repeating an earlier line's sentence", f"{share(echoing):.0%}"),
            ("beats showing the prompt's rules or headings", f"{share(leaked):.0%}"),
            ("beats ended at the token cap (length)", f"{share(capped):.0%}"),
            ("beats ending mid-word", f"{share(broken):.0%}"),
            ("beats streamed == committed", f"{share(equal):.0%}"),
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
            "seconds": round(elapsed, 1),
            "texts": [{k: b[k] for k in ("speaker", "text", "truncated", "error")} for b in beats],
        },
    )


if __name__ == "__main__":
    main()
