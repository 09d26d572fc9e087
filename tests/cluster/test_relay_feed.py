"""A chat's feed relayed from its owner's engine to another engine on the same log.

Two engines share one database file: the owner runs the turn, and what its
feed publishes is encoded as the bus carries it and relayed, frame by frame,
into the other engine's feed (``ChatFeed.relay``), whose watcher must see
what the owner's watcher sees. No bus here: the bus's own tests cover it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import trio

from actors import EngineSettings, FeedHooks, Resync, open_engine
from cluster._relay import decode, encode
from llm import ScriptedBackend
from protocol import BeatComplete, BeatStarted, ChatState, InFlight, Token, TurnSettled
from store import Store


def committed(messages: list[Any]) -> list[Any]:
    """The numbered messages, and the streamed text: merged tokens show it the same."""
    text = "".join(m.text for m in messages if isinstance(m, Token))
    return [m for m in messages if not isinstance(m, Token)] + [text]


async def settled(messages: AsyncIterator[Any]) -> list[Any]:
    seen: list[Any] = []
    with trio.fail_after(30):
        async for message in messages:
            seen.append(message)
            if isinstance(message, TurnSettled):
                return seen
    raise AssertionError("the watch ended before the turn settled")


async def test_a_follower_sees_what_the_owner_published(tmp_path: Path) -> None:
    settings = EngineSettings(db_path=tmp_path / "troupe.db", data_dir=tmp_path)
    backend = ScriptedBackend()
    frames: list[bytes] = []
    wake = trio.Event()

    def tap(chat_id: str, item: object) -> None:
        nonlocal wake
        frames.append(encode(7, item))
        wake.set()
        wake = trio.Event()

    hooks = FeedHooks(tap=tap)
    async with (
        open_engine(settings, narrative=backend, classifier=backend, feed_hooks=hooks) as owner,
        open_engine(settings, narrative=backend, classifier=backend, resume=False) as other,
    ):
        mira = await owner.create_bot("Mira", "barkeep", "")
        chat = await owner.create_chat(mira.id, None, "The Eel")
        backend.push_narrative("Mira squints at the key, then at you.")

        async def pump() -> None:
            sent = 0
            while True:
                while sent < len(frames):
                    epoch, item = decode(frames[sent])
                    assert epoch == 7
                    other.svc.feeds(chat.id).relay(item)
                    sent += 1
                await wake.wait()

        async with (
            owner.watch(chat.id) as mine,
            other.watch(chat.id) as theirs,
            trio.open_nursery() as nursery,
        ):
            nursery.start_soon(pump)
            assert isinstance(await mine.__anext__(), ChatState)
            assert isinstance(await theirs.__anext__(), ChatState)
            await owner.send_turn(chat.id, '"Recognise this key?"')
            here = await settled(mine)
            there = await settled(theirs)
            nursery.cancel_scope.cancel()
    assert committed(there) == committed(here)
    text = "".join(m.text for m in there if isinstance(m, Token))
    complete = next(m for m in there if isinstance(m, BeatComplete))
    assert text == complete.text == "Mira squints at the key, then at you."


async def test_a_token_that_does_not_follow_on_is_dropped_and_a_gap_restarts(
    tmp_path: Path,
) -> None:
    settings = EngineSettings(db_path=tmp_path / "troupe.db", data_dir=tmp_path)
    backend = ScriptedBackend()
    async with open_engine(settings, narrative=backend, classifier=backend) as engine:
        mira = await engine.create_bot("Mira", "barkeep", "")
        chat = await engine.create_chat(mira.id, None, "The Eel")
        last = await engine.store.run(Store.last_seq, chat.id)
        async with engine.watch(chat.id) as messages:
            state = await messages.__anext__()
            assert isinstance(state, ChatState) and state.seq == last
            feed = engine.svc.feeds(chat.id)
            feed.relay(BeatStarted(chat.id, 99, 1, mira.id, False, seq=last + 1))
            feed.relay(Token(chat.id, 99, mira.id, 0, "Well"))
            feed.relay(Token(chat.id, 99, mira.id, 9, "lost"))  # its start was missed
            feed.relay(Token(chat.id, 99, mira.id, 4, ", then"))
            with trio.fail_after(10):
                assert isinstance(await messages.__anext__(), BeatStarted)
                text = ""
                while len(text) < len("Well, then"):  # a lagging watcher gets them merged
                    token = await messages.__anext__()
                    assert isinstance(token, Token)
                    text += token.text
            assert text == "Well, then"
            assert feed.in_flight() is not None and feed.in_flight().text == "Well, then"  # type: ignore[union-attr]
            # A seq that skips one: every watcher starts again from a fresh state.
            feed.relay(BeatComplete(chat.id, 99, 100, mira.id, "x", False, None, None, last + 3))
            with trio.fail_after(10):
                again = await messages.__anext__()
            assert isinstance(again, ChatState)


def test_frames_round_trip() -> None:
    token = Token("c1", 3, "mira", 5, "héllo")
    assert decode(encode(2, token)) == (2, token)
    epoch, item = decode(encode(4, Resync()))
    assert epoch == 4 and isinstance(item, Resync)


async def test_a_beat_joined_mid_way_goes_on_from_the_owners_text_so_far(
    tmp_path: Path,
) -> None:
    settings = EngineSettings(db_path=tmp_path / "troupe.db", data_dir=tmp_path)
    backend = ScriptedBackend()
    async with open_engine(settings, narrative=backend, classifier=backend) as engine:
        mira = await engine.create_bot("Mira", "barkeep", "")
        chat = await engine.create_chat(mira.id, None, "The Eel")
        async with engine.watch(chat.id) as messages:
            state = await messages.__anext__()
            assert isinstance(state, ChatState) and state.in_flight is None
            feed = engine.svc.feeds(chat.id)
            # This node's feed was made after beat 99 started: its tokens carry on from
            # text it never had, and are kept aside until the owner says the text so far.
            assert not feed.relay(Token(chat.id, 99, mira.id, 8, "en she"))
            assert not feed.relay(Token(chat.id, 99, mira.id, 14, " said"))
            feed.catch_up(InFlight(99, mira.id, "Well, th"))
            with trio.fail_after(10):
                caught = await messages.__anext__()
            assert isinstance(caught, ChatState) and caught.in_flight is not None
            assert caught.in_flight.text == "Well, then she said"
            # From there on the beat's tokens go through, an overlap trimmed.
            assert feed.relay(Token(chat.id, 99, mira.id, 15, "said no"))
            with trio.fail_after(10):
                token = await messages.__anext__()
            assert isinstance(token, Token) and (token.offset, token.text) == (19, " no")
            # An answer older than what the feed has changes nothing; no beat, nothing.
            feed.catch_up(InFlight(99, mira.id, "Well"))
            feed.catch_up(None)
            assert feed.in_flight() == InFlight(99, mira.id, "Well, then she said no")
