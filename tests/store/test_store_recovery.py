"""Crash recovery: open beats are closed on open; SIGKILL never loses a commit."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from pathlib import Path

from crash_writer import text_of
from storeworld import Where, open_store, said

from protocol import events as ev
from protocol import load_event
from store import Store

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent


def test_open_closes_a_beat_with_its_checkpointed_text(place: Where) -> None:
    store = open_store(place)
    store.append(ev.BotCreated("mira", "Mira", ""), ev.ChatCreated("c1", "T", "mira"))
    (user_id,) = store.append(ev.UserTurn("c1", "Hi.", said("Hi."))).ids
    (beat,) = store.append(ev.AssistantTurnStarted("c1", "mira", user_id)).ids
    store.checkpoint_beat(beat, "c1", "Well, ")
    store.checkpoint_beat(beat, "c1", "Well, hello")
    store.close()  # as good as a crash: the beat never ended

    store = open_store(place)
    try:
        assert store.open_beats("c1") == []
        turn = store.latest_assistant_turn("c1")
        assert turn is not None and (turn.text, turn.truncated) == ("Well, hello", True)
        stored = store.get_event(turn.event_id)
        assert stored is not None and isinstance(stored.event, ev.AssistantTurn)
        assert (stored.event.error, stored.event.started_id) == ("interrupted", beat)
        assert store.messages_after("c1", 0) == [
            {
                "type": "beat_complete",
                "chat_id": "c1",
                "beat_id": beat,
                "event_id": turn.event_id,
                "speaker_id": "mira",
                "text": "Well, hello",
                "truncated": True,
                "interjection_of": None,
                "error": "interrupted",
                "seq": 1,
            }
        ]
        assert store.statistics()["recovered"] == 1
        assert store.conn.execute("SELECT count(*) FROM beat_checkpoints").fetchall() == [(0,)]
    finally:
        store.close()


def test_a_beat_without_checkpoint_is_closed_empty(place: Where) -> None:
    store = open_store(place)
    store.append(ev.BotCreated("mira", "Mira", ""), ev.BotCreated("tam", "Tam", ""))
    store.append(ev.ChatCreated("c1", "T", "mira", "tam"))
    (user_id,) = store.append(ev.UserTurn("c1", "Hi.", said("Hi."))).ids
    store.append(ev.AssistantTurnStarted("c1", "tam", user_id, interjection_of="mira"))
    store.close()
    store = open_store(place)
    try:
        turn = store.latest_assistant_turn("c1")
        assert turn is not None
        assert (turn.text, turn.truncated, turn.interjection_of) == ("", True, "mira")
        assert Store.recover(store) == [], "nothing left to recover"
    finally:
        store.close()


def run_writer(db: Path, seed: int, pause_at: int = -1) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(HERE)])}
    return subprocess.Popen(
        [sys.executable, str(HERE / "crash_writer.py"), str(db), str(seed), str(pause_at)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=env,
    )


def test_sigkill_at_random_moments_never_loses_a_commit(tmp_path: Path) -> None:
    db = tmp_path / "crash.db"
    rng = random.Random(1234)
    committed: dict[int, str] = {}
    checkpoints: dict[int, int] = {}  # beat -> words in its last reported checkpoint
    recovered_beats = 0
    for round_ in range(20):
        # Half the rounds stop mid-beat on purpose, so recovery is sure to be needed;
        # the others are killed wherever the writer happens to be.
        pause_at = rng.randint(1, 6) if round_ % 2 else -1
        lines_before_kill = rng.randint(1, 80)
        child = run_writer(db, round_, pause_at)
        assert child.stdout is not None
        for seen, line in enumerate(child.stdout, start=1):
            kind, *rest = line.split()
            if kind == "E":
                committed[int(rest[0])] = rest[1]
            elif kind == "C":
                checkpoints[int(rest[0])] = int(rest[1])
            if kind == "P" or (pause_at < 0 and seen >= lines_before_kill):
                break
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stdout.close()
        assert child.stdin is not None
        child.stdin.close()
        assert child.returncode == -signal.SIGKILL, "the writer died of the kill, not a bug"

        store = Store.open(db, data_dir=tmp_path)
        try:
            assert store.conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            for event_id, kind in committed.items():
                stored = store.get_event(event_id)
                assert stored is not None, f"committed event {event_id} lost in round {round_}"
                assert stored.kind == kind
            assert store.open_beats("c1") == []
            recovered_beats += store.statistics()["recovered"]
            for beat, words in checkpoints.items():
                rows = store.conn.execute(
                    "SELECT payload FROM event_log WHERE kind = 'assistant_turn' "
                    "AND json_extract(payload, '$.started_id') = ?",
                    (beat,),
                ).fetchall()
                assert len(rows) == 1, f"beat {beat} ended {len(rows)} times"
                ended = load_event("assistant_turn", str(rows[0][0]))
                assert isinstance(ended, ev.AssistantTurn)
                if ended.error == "interrupted":
                    assert ended.text.startswith(text_of(words)), "a checkpoint was lost"
        finally:
            store.close()
    assert recovered_beats >= 10, "the paused rounds left a beat open every time"
    assert len(committed) > 20


def test_a_checkpoint_after_the_beat_ended_is_ignored(place: Where) -> None:
    store = open_store(place)
    try:
        store.append(ev.BotCreated("mira", "Mira", ""), ev.ChatCreated("c1", "T", "mira"))
        (user_id,) = store.append(ev.UserTurn("c1", "Hi.", said("Hi."))).ids
        (beat,) = store.append(ev.AssistantTurnStarted("c1", "mira", user_id)).ids
        store.checkpoint_beat(beat, "c1", "Hel")
        store.checkpoint_beat(beat, "c2", "wrong chat")
        checkpoints = "SELECT beat_id, chat_id, text FROM beat_checkpoints"
        assert store.conn.execute(checkpoints).fetchall() == [(beat, "c1", "Hel")]
        store.append(ev.AssistantTurn("c1", "mira", user_id, beat, "Hello."))
        store.checkpoint_beat(beat, "c1", "Hello.")  # late: the beat already ended
        assert store.conn.execute(checkpoints).fetchall() == []
    finally:
        store.close()


def test_recovery_can_end_the_open_beats_of_some_chats_alone(place: Where) -> None:
    store = open_store(place)
    try:
        store.append(ev.BotCreated("mira", "Mira", ""))
        beats = {}
        for chat in ("c1", "c2"):
            store.append(ev.ChatCreated(chat, "T", "mira"))
            (user_id,) = store.append(ev.UserTurn(chat, "Hi.", said("Hi."))).ids
            (beats[chat],) = store.append(ev.AssistantTurnStarted(chat, "mira", user_id)).ids
        assert store.recover(accept=lambda chat: False) == []
        assert store.recover(accept=lambda chat: chat == "c2") == ["c2"]
        assert store.open_beats("c1") == [beats["c1"]] and store.open_beats("c2") == []
    finally:
        store.close()
