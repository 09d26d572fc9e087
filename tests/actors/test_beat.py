"""One beat through the real engine and store: tokens never wait for the store, a full
disk still ends the beat, an empty reply is marked, leading whitespace never shows, a
beat never speaks for someone else, and a reply cut by its token cap says so.

The store runs on its real thread with a real file, so these tests use the real
clock; a gate (a ``threading.Event``) holds the store's thread where a test
needs it busy, and every wait is bounded.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio

from actors import Engine, EngineSettings, open_engine
from llm import (
    ModelLength,
    ModelSettings,
    NarrativeRequest,
    OpenAIBackend,
    ScriptedBackend,
    Timeouts,
)
from protocol import (
    BeatComplete,
    ChatSettings,
    ChatState,
    Error,
    ProtocolError,
    Token,
    TurnSettled,
)
from store import Store
from story import foreign_line

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.support.openai_server import run_openai_server

BOUND = 20.0
"""Seconds before a test that waits for a message gives up: a hang guard, never a measure."""


class Narrator(ScriptedBackend):
    """A narrative backend the test feeds chunk by chunk; classifiers stay scripted."""

    def __init__(self) -> None:
        super().__init__()
        self._send, self._receive = trio.open_memory_channel[str | Exception | None](math.inf)
        self.left = trio.Event()
        """Set when the beat left the stream (closing the request)."""

    def say(self, *chunks: str) -> None:
        """Stream these chunks (they wait in order until the beat reads them)."""
        for chunk in chunks:
            self._send.send_nowait(chunk)

    def done(self) -> None:
        """End the reply in flight."""
        self._send.send_nowait(None)

    def fail(self, exc: Exception) -> None:
        """End the reply in flight with this error, after the chunks said before it."""
        self._send.send_nowait(exc)

    @asynccontextmanager
    async def stream(self, request: NarrativeRequest) -> AsyncIterator[AsyncIterator[str]]:
        self.requests.append(request)
        try:
            yield self._chunks()
        finally:
            self.left.set()

    async def _chunks(self) -> AsyncIterator[str]:
        while (chunk := await self._receive.receive()) is not None:
            if isinstance(chunk, Exception):
                raise chunk
            yield chunk


def openai_narrator(url: str) -> OpenAIBackend:
    """The real openai backend on the loopback test server at ``url``, with short timeouts."""
    return OpenAIBackend(
        ModelSettings(
            backend="openai",
            base_url=url,
            model="test-model",
            timeouts=Timeouts(connect=2, first_token=5, stall=5, total=20),
        )
    )


def settings_for(tmp_path: Path, **changes: Any) -> EngineSettings:
    settings = EngineSettings(
        db_path=tmp_path / "troupe.db", data_dir=tmp_path, classifier_timeout=5
    )
    return attrs.evolve(settings, **changes)


async def make_chat(engine: Engine) -> str:
    mira = await engine.create_bot("Mira", "barkeep", "")
    chat = await engine.create_chat(mira.id, None, "The Eel")
    return chat.id


async def until(messages: AsyncIterator[Any], kind: type) -> Any:
    with trio.fail_after(BOUND):
        async for message in messages:
            if isinstance(message, kind):
                return message
    raise AssertionError(f"the watch ended before a {kind.__name__}")


async def collect_turn(messages: AsyncIterator[Any]) -> list[Any]:
    """Every message up to and including the turn's turn_settled."""
    seen: list[Any] = []
    with trio.fail_after(BOUND):
        async for message in messages:
            seen.append(message)
            if isinstance(message, TurnSettled):
                return seen
    raise AssertionError("the watch ended before turn_settled")


@asynccontextmanager
async def store_held(engine: Engine) -> AsyncIterator[threading.Event]:
    """Hold the store's thread (as a long rewind would) until the block ends."""
    gate, entered = threading.Event(), threading.Event()

    def block(_: Store) -> None:
        entered.set()
        gate.wait(2 * BOUND)  # longer than any wait of the test, which fails first

    async with trio.open_nursery() as nursery:
        nursery.start_soon(engine.store.run, block)
        await trio.to_thread.run_sync(entered.wait, BOUND)
        try:
            yield gate
        finally:
            gate.set()


# --- defect: one chat's store work stalled every other chat's tokens ---


async def test_tokens_reach_watchers_while_the_store_thread_is_busy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    written: list[str] = []  # the text of every checkpoint, as the store's thread writes it
    checkpoint_beat = Store.checkpoint_beat

    def checkpoint(store: Store, beat_id: int, chat_id: str, text: str) -> None:
        checkpoint_beat(store, beat_id, chat_id, text)
        written.append(text)

    monkeypatch.setattr(Store, "checkpoint_beat", checkpoint)
    narrator = Narrator()
    # Checkpoint as often as possible: a token loop that waited for a checkpoint would
    # stop at the first token after the store's thread got busy.
    settings = settings_for(tmp_path, checkpoint_interval=0.0)
    async with open_engine(settings, narrative=narrator, classifier=narrator) as engine:
        chat_id = await make_chat(engine)
        async with engine.watch(chat_id) as messages:
            await until(messages, ChatState)
            await engine.send_turn(chat_id, "Tell me everything.")
            narrator.say("Mira")
            await until(messages, Token)
            words = [f" w{n}" for n in range(50)]
            async with store_held(engine) as gate:
                written_before = len(written)
                for word in words:
                    narrator.say(word)
                    token = await until(messages, Token)
                    assert token.text == word
                assert not gate.is_set()  # all 50 arrived while the store was held
            full = "Mira" + "".join(words)
            for _ in range(200):  # the checkpoint task catches up once the store is free
                if written and written[-1] == full:
                    break
                await engine.store.run(Store.last_seq, chat_id)
            assert written[-1] == full
            # 50 tokens while the store was held: one checkpoint waited for it, and one
            # more took everything that came meanwhile.
            assert len(written) - written_before <= 2
            narrator.done()
            complete = await until(messages, BeatComplete)
        assert complete.text == full and not complete.truncated


# --- defect: a full disk lost a reply silently ---

LONG_WORDS = [f" word{n}" for n in range(2600)]
LONG = "Mira" + "".join(LONG_WORDS)  # about 20,000 characters


def fill_up(store: Store) -> None:
    store.conn.execute("PRAGMA max_page_count = 1")  # no page beyond those the file has


def make_room(store: Store) -> None:
    store.conn.execute("PRAGMA max_page_count = 1073741823")


def integrity(store: Store) -> list[tuple[Any, ...]]:
    return [tuple(row) for row in store.conn.execute("PRAGMA integrity_check")]


async def run_into_a_full_disk(engine: Engine, narrator: Narrator, fill: Any, free: Any) -> None:
    """A reply streams in full; its commit finds no room; later, room comes back."""
    chat_id = await make_chat(engine)
    async with engine.watch(chat_id) as messages:
        before = await until(messages, ChatState)
        await engine.send_turn(chat_id, "Tell me the whole story.")
        narrator.say("Mira")
        await until(messages, Token)
        await fill()
        narrator.say(*LONG_WORDS)
        narrator.done()
        turn = await collect_turn(messages)

        streamed = "".join(m.text for m in turn if isinstance(m, Token))
        complete = next(m for m in turn if isinstance(m, BeatComplete))
        errors = [m for m in turn if isinstance(m, Error)]
        settled = turn[-1]
        assert streamed == LONG[len("Mira") :]
        assert complete.text == LONG and complete.truncated
        assert complete.error == "storage_full"
        assert (complete.seq, complete.event_id) == (0, 0)  # told, not committed
        assert [e.code for e in errors] == ["storage_full"]
        assert errors[0].chat_id == chat_id
        assert isinstance(settled, TurnSettled) and settled.seq == 0
        state = await engine.chat_state(chat_id)
        assert state.in_flight is None

        # Later writes are refused with a clear code, and write nothing.
        with pytest.raises(ProtocolError) as info:
            await engine.send_turn(chat_id, "Are you still there?")
        assert info.value.code == "storage_full"
        with pytest.raises(ProtocolError) as info:
            await engine.create_bot("Tam", "a fisherman", "")
        assert info.value.code == "storage_full"

        # Space returns: no restart, the chat takes a turn, and the reply lands first.
        await free()
        narrator.say("Mira nods.")
        narrator.done()
        await engine.send_turn(chat_id, "Are you still there?")
        landed = await until(messages, BeatComplete)
        assert landed.beat_id == complete.beat_id and landed.text == LONG
        assert landed.seq == before.seq + 3  # user_turn, beat_started, then this
        assert landed.event_id > 0
        after = await collect_turn(messages)
        assert [m.text for m in after if isinstance(m, BeatComplete)] == ["Mira nods."]
        seqs = [m.seq for m in after if not isinstance(m, Token | Error)]
        assert seqs == list(range(landed.seq + 1, landed.seq + 1 + len(seqs)))
    timeline = await engine.store.run(Store.timeline, chat_id)
    reply = next(t for t in timeline if t.event_id == landed.event_id)
    assert reply.text == LONG and reply.truncated
    assert await engine.store.run(integrity) == [("ok",)]


async def test_a_full_disk_ends_the_beat_settles_the_turn_and_keeps_the_text(
    tmp_path: Path,
) -> None:
    narrator = Narrator()
    settings = settings_for(tmp_path)
    async with open_engine(settings, narrative=narrator, classifier=narrator) as engine:

        async def fill() -> None:
            await engine.store.run(fill_up)

        async def free() -> None:
            await engine.store.run(make_room)

        await run_into_a_full_disk(engine, narrator, fill, free)


@contextmanager
def small_tmpfs(folder: Path, size: str) -> Iterator[Path]:
    """A real filesystem of ``size`` mounted at ``folder``; skips where mounting is not allowed."""
    folder.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
        capture_output=True,
        check=False,
        timeout=30,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False, timeout=30)


def fill_the_disk(folder: Path) -> Path:
    """Write a file until the filesystem has no room left."""
    ballast = folder / "ballast"
    block = b"\0" * 65536
    # Unbuffered, so that closing the file has nothing left to write into a full disk.
    with ballast.open("wb", buffering=0) as out:
        for _ in range(100_000):  # bounded: far beyond any size the test mounts
            try:
                out.write(block)
            except OSError:
                break
    for size in (4096, 512, 1):  # the last few bytes too
        try:
            with ballast.open("ab") as out:
                for _ in range(64):
                    out.write(b"\0" * size)
                    out.flush()
        except OSError:
            continue
    return ballast


async def test_a_really_full_filesystem_is_survived_the_same_way(tmp_path: Path) -> None:
    with small_tmpfs(tmp_path / "disk", "8m") as disk:
        narrator = Narrator()
        settings = settings_for(disk, checkpoint_interval=3600.0)
        async with open_engine(settings, narrative=narrator, classifier=narrator) as engine:
            ballast: list[Path] = []

            async def fill() -> None:
                ballast.append(await trio.to_thread.run_sync(fill_the_disk, disk))

            async def free() -> None:
                ballast[0].unlink()

            await run_into_a_full_disk(engine, narrator, fill, free)


# --- smaller defects of a beat's ending ---


async def test_an_empty_reply_is_marked_as_such(tmp_path: Path) -> None:
    backend = ScriptedBackend()
    backend.push_narrative("")
    backend.push_narrative(" \n ")
    async with open_engine(
        settings_for(tmp_path), narrative=backend, classifier=backend
    ) as engine:
        chat_id = await make_chat(engine)
        async with engine.watch(chat_id) as messages:
            await until(messages, ChatState)
            for prose in ("Hello?", "Anyone?"):
                await engine.send_turn(chat_id, prose)
                turn = await collect_turn(messages)
                complete = next(m for m in turn if isinstance(m, BeatComplete))
                assert (complete.text, complete.truncated, complete.error) == ("", True, "empty")
        timeline = await engine.store.run(Store.timeline, chat_id)
        replies = [t for t in timeline if t.kind == "assistant"]
        assert [(t.text, t.truncated) for t in replies[-2:]] == [("", True), ("", True)]


async def test_leading_whitespace_is_neither_streamed_nor_kept(tmp_path: Path) -> None:
    narrator = Narrator()
    async with open_engine(
        settings_for(tmp_path), narrative=narrator, classifier=narrator
    ) as engine:
        chat_id = await make_chat(engine)
        async with engine.watch(chat_id) as messages:
            await until(messages, ChatState)
            await engine.send_turn(chat_id, "Hello")
            narrator.say(" ", "\n", " \n  Mira", " nods.", "  ")
            narrator.done()
            turn = await collect_turn(messages)
        tokens = [m for m in turn if isinstance(m, Token)]
        complete = next(m for m in turn if isinstance(m, BeatComplete))
        assert tokens[0].text.startswith("Mira") and tokens[0].offset == 0
        assert "".join(t.text for t in tokens) == complete.text == "Mira nods.  "
        assert not complete.truncated
        timeline = await engine.store.run(Store.timeline, chat_id)
        assert timeline[-1].text == "Mira nods.  "


async def test_a_beat_past_its_cleanup_deadline_still_ends_for_its_watchers(
    tmp_path: Path,
) -> None:
    narrator = Narrator()
    # The cleanup deadline is the shutdown timeout; the store's thread is held past it.
    settings = settings_for(tmp_path, shutdown_timeout=0.05, checkpoint_interval=3600.0)
    async with open_engine(settings, narrative=narrator, classifier=narrator) as engine:
        chat_id = await make_chat(engine)
        async with engine.watch(chat_id) as messages:
            await until(messages, ChatState)
            await engine.send_turn(chat_id, "Hello")
            narrator.say("Mira", " waits.")
            await until(messages, Token)
            async with store_held(engine) as gate:
                narrator.done()
                told = await until(messages, BeatComplete)
                assert not gate.is_set()  # it ended while the store was still held
                assert (told.text, told.seq, told.event_id) == ("Mira waits.", 0, 0)
                assert engine.feed(chat_id).in_flight() is None
            # Once the store takes it, the end is committed and published with its seq.
            committed = await until(messages, BeatComplete)
            assert committed.beat_id == told.beat_id and committed.text == "Mira waits."
            assert committed.seq > 0 and committed.event_id > 0
            await until(messages, TurnSettled)
        await engine.wait_settled(chat_id)
        timeline = await engine.store.run(Store.timeline, chat_id)
        assert timeline[-1].text == "Mira waits."
        assert await engine.store.run(Store.open_beats, chat_id) == []


# --- defect: the embedded model wrote the person's lines inside a beat ---


async def make_pair(engine: Engine) -> str:
    """A chat of Wren (the person) with Mira, and Tobias as the guest."""
    await engine.set_you("Wren", "a cartographer")
    mira = await engine.create_bot("Mira", "barkeep", "")
    tobias = await engine.create_bot("Tobias", "lamplighter", "")
    return (await engine.create_chat(mira.id, tobias.id, "The Eel")).id


async def test_a_beat_stops_at_a_line_spoken_for_someone_else(tmp_path: Path) -> None:
    narrator = Narrator()
    async with open_engine(
        settings_for(tmp_path), narrative=narrator, classifier=narrator
    ) as engine:
        chat_id = await make_pair(engine)
        async with engine.watch(chat_id) as messages:
            await until(messages, ChatState)
            await engine.send_turn(chat_id, "Mira, you don't trust me much, do you?")
            # The model drifts into a transcript, in the form the stop tag misses; the
            # rest would follow if the beat went on reading.
            narrator.say("*Mira shrugs.*", ' "Should', ' I?"', "\n", "- W", "ren", ":", ' "No."')
            narrator.say("\n**Tobias:** Aye.", "\nMira: Fine.")
            with trio.fail_after(BOUND):
                await narrator.left.wait()  # the beat left the stream: the model stopped
            turn = await collect_turn(messages)
        tokens = "".join(m.text for m in turn if isinstance(m, Token))
        complete = next(m for m in turn if isinstance(m, BeatComplete))
        assert tokens == complete.text == '*Mira shrugs.* "Should I?"'
        assert (complete.truncated, complete.error) == (False, None)
        timeline = await engine.store.run(Store.timeline, chat_id)
        assert timeline[-1].text == complete.text


async def test_the_openai_backend_is_cut_at_a_foreign_line_too(tmp_path: Path) -> None:
    async with run_openai_server() as server:
        tail = " ".join(f"word{n}" for n in range(400))
        server.script.text = f'Mira nods. "Ale, mostly."\n**Wren:** "And you?"\nMira: {tail}'
        server.script.rate = 2000.0  # tokens keep coming well after the cut
        narrative = openai_narrator(server.url)
        scripted = ScriptedBackend()
        async with open_engine(
            settings_for(tmp_path), narrative=narrative, classifier=scripted
        ) as engine:
            chat_id = await make_pair(engine)
            async with engine.watch(chat_id) as messages:
                await until(messages, ChatState)
                await engine.send_turn(chat_id, "What's good here?")
                turn = await collect_turn(messages)
                with trio.fail_after(BOUND):
                    await server.disconnected.wait()  # the beat hung up on the server
        tokens = "".join(m.text for m in turn if isinstance(m, Token))
        complete = next(m for m in turn if isinstance(m, BeatComplete))
        assert tokens == complete.text == 'Mira nods. "Ale, mostly."'
        assert foreign_line(complete.text, ["Wren", "Tobias"], "Mira") is None
        assert server.completed == 0
        await narrative.aclose()


async def test_a_reply_at_its_token_cap_is_marked_length(tmp_path: Path) -> None:
    narrator = Narrator()
    async with open_engine(
        settings_for(tmp_path), narrative=narrator, classifier=narrator
    ) as engine:
        chat_id = await make_chat(engine)
        async with engine.watch(chat_id) as messages:
            await until(messages, ChatState)
            await engine.send_turn(chat_id, "Hello")
            narrator.say("Mira nods.", " She pours")
            narrator.fail(ModelLength("length"))
            turn = await collect_turn(messages)
        tokens = "".join(m.text for m in turn if isinstance(m, Token))
        complete = next(m for m in turn if isinstance(m, BeatComplete))
        assert tokens == complete.text == "Mira nods. She pours"
        assert (complete.truncated, complete.error) == (True, "length")
        # A long reply is no failure of the model: nobody is told of an llm_error.
        assert not [m for m in turn if isinstance(m, Error)]


async def test_the_openai_backend_is_sent_the_chat_s_sampler_settings(tmp_path: Path) -> None:
    async with run_openai_server() as server:
        server.script.text = "Mira nods."
        narrative = openai_narrator(server.url)
        async with open_engine(
            settings_for(tmp_path), narrative=narrative, classifier=ScriptedBackend()
        ) as engine:
            chat_id = await make_chat(engine)
            changes = ChatSettings(0.3, 0.8, 0.07, 1.2, 90)
            assert await engine.update_chat_settings(chat_id, changes) == changes
            async with engine.watch(chat_id) as messages:
                await until(messages, ChatState)
                await engine.send_turn(chat_id, "What's good here?")
                await collect_turn(messages)
                await engine.update_chat_settings(chat_id, ChatSettings(temperature=1.1))
                await engine.send_turn(chat_id, "And to eat?")
                await collect_turn(messages)
        first, second = [r for r in server.requests if r.get("stream")]
        sent = {k: first[k] for k in ("temperature", "top_p", "min_p", "repeat_penalty")}
        assert sent == {"temperature": 0.3, "top_p": 0.8, "min_p": 0.07, "repeat_penalty": 1.2}
        assert first["max_tokens"] == 90
        assert second["temperature"] == 1.1 and second["top_p"] == 0.8  # the rest stayed
        await narrative.aclose()


async def test_a_chat_at_its_defaults_sends_no_extra_sampler_fields(tmp_path: Path) -> None:
    async with run_openai_server() as server:
        server.script.text = "Mira nods."
        narrative = openai_narrator(server.url)
        async with open_engine(
            settings_for(tmp_path), narrative=narrative, classifier=ScriptedBackend()
        ) as engine:
            chat_id = await make_chat(engine)
            async with engine.watch(chat_id) as messages:
                await until(messages, ChatState)
                await engine.send_turn(chat_id, "What's good here?")
                await collect_turn(messages)
        (request,) = [r for r in server.requests if r.get("stream")]
        assert not {"top_p", "min_p", "repeat_penalty"} & set(request)
        assert request["temperature"] == 0.8 and request["max_tokens"] == 300
        await narrative.aclose()
