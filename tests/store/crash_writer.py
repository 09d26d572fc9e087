"""A writer for the crash tests: appends turns to a store until it is killed.

Run as ``python crash_writer.py DB SEED [PAUSE_AT]``. After every commit it
prints what was committed, one line each, flushed:

- ``E <id> <kind>`` for an appended event,
- ``C <beat_id> <words>`` for a checkpoint holding ``text_of(words)``,
- ``P`` when it stops mid-beat after checkpoint number PAUSE_AT, waiting
  (on standard input) to be killed.

The parent kills it with SIGKILL wherever it is, and checks that everything
printed survived and that recovery closed the beat it was streaming.
"""

from __future__ import annotations

import random
import sys

from protocol import Segment
from protocol import events as ev
from store import Store


def text_of(words: int) -> str:
    """The text of a beat after ``words`` words: each checkpoint extends the last."""
    return "".join(f"word{n} " for n in range(words))


def main() -> None:
    path, seed = sys.argv[1], int(sys.argv[2])
    pause_at = int(sys.argv[3]) if len(sys.argv) > 3 else -1
    rng = random.Random(seed)
    store = Store.open(path)

    def append(*events: ev.Event) -> tuple[int, ...]:
        ids = store.append(*events).ids
        print("\n".join(f"E {i} {ev.kind_of(e)}" for i, e in zip(ids, events, strict=True)))
        sys.stdout.flush()
        return ids

    if store.get_chat("c1") is None:
        append(
            ev.BotCreated("mira", "Mira", "A barkeep."),
            ev.ChatCreated("c1", "Crash course", "mira", None, "Inn"),
        )
    checkpoints = 0
    for turn in range(1_000_000):
        prose = f"Turn {seed}-{turn}."
        (user_id,) = append(ev.UserTurn("c1", prose, (Segment("narration", prose),)))
        (beat,) = append(ev.AssistantTurnStarted("c1", "mira", user_id))
        words = 0
        for _ in range(rng.randint(1, 4)):
            words += rng.randint(1, 30)
            store.checkpoint_beat(beat, "c1", text_of(words))
            print(f"C {beat} {words}", flush=True)
            checkpoints += 1
            if checkpoints == pause_at:
                print("P", flush=True)
                sys.stdin.readline()  # killed while waiting here
        append(ev.AssistantTurn("c1", "mira", user_id, beat, text_of(words + 1)))
        append(
            ev.MemoryWritten("c1", "mira", f"I remember {prose}"),
            ev.EdgeUpdate("mira", "you", "c1", rng.randint(-5, 5), rng.randint(-5, 5)),
        )
        if turn % 3 == 2:
            rows = store.conn.execute(
                "SELECT id FROM event_log WHERE chat_id = 'c1' AND kind = 'user_turn' "
                "AND rewound_by IS NULL ORDER BY id DESC LIMIT 5"
            ).fetchall()
            rewind_id = store.rewind("c1", int(str(rng.choice(rows)[0])))
            print(f"E {rewind_id} chat_rewound", flush=True)


if __name__ == "__main__":
    main()
