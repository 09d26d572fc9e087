"""The engine's own lifetimes: a chat's feed lives with its chat; shutdown is bounded.

These run on the real store with a real clock (the store works in a thread);
no test sleeps: each waits for an event (an actor stopping, a message).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import trio

from actors import Engine, EngineSettings, open_engine
from llm import ScriptedBackend
from protocol import BeatComplete, ChatState, Token, TurnSettled
from store import Store


async def until(messages: AsyncIterator[Any], kind: type) -> Any:
    async for message in messages:
        if isinstance(message, kind):
            return message
    raise AssertionError(f"the watch ended before a {kind.__name__}")


def feeds(engine: Engine) -> set[str]:
    return set(engine.statistics()["chats"])


def chat_registry(engine: Engine) -> dict[str, int]:
    stats: dict[str, int] = engine.statistics()["system"]["registries"]["chat"]
    return stats


async def passivation_of(engine: Engine, chat_id: str) -> None:
    """Wait until the chat's actor, active now, has passivated."""
    actor = engine.system.actor(f"chat:{chat_id}")
    assert actor is not None, "the chat actor should be active"
    with trio.fail_after(10):
        await actor.wait_stopped()
    assert actor.statistics().state == "passivated"


async def test_a_chats_feed_lives_with_its_actor_or_its_watchers(tmp_path: Path) -> None:
    backend = ScriptedBackend()
    settings = EngineSettings(
        db_path=tmp_path / "t.db", data_dir=tmp_path, classifier_timeout=5, chat_idle_timeout=0.3
    )
    async with open_engine(settings, narrative=backend, classifier=backend) as engine:
        mira = await engine.create_bot("Mira", "barkeep", "")
        chat_id = (await engine.create_chat(mira.id)).id
        backend.push_narrative("One.")
        await engine.send_turn(chat_id, "Hi")
        await engine.wait_settled(chat_id)
        assert feeds(engine) == {chat_id}
        await passivation_of(engine, chat_id)
        assert feeds(engine) == set()  # nobody watches, the actor sleeps: the feed is gone

        # Reopening the chat makes a fresh feed that goes on from the store.
        async with engine.watch(chat_id) as messages:
            state = await messages.__anext__()
            assert isinstance(state, ChatState) and state.timeline[-1].text == "One."
            backend.push_narrative("Two.")
            await engine.send_turn(chat_id, "Again")
            complete = await until(messages, BeatComplete)
            settled = await until(messages, TurnSettled)
            assert complete.text == "Two." and settled.seq > complete.seq > state.seq

            # A watcher keeps the feed across a passivation, and hears the next turn.
            await passivation_of(engine, chat_id)
            assert feeds(engine) == {chat_id}
            backend.push_narrative("Three.")
            await engine.send_turn(chat_id, "Still there?")
            complete = await until(messages, BeatComplete)
            assert complete.text == "Three."
            assert (await until(messages, TurnSettled)).seq > settled.seq
        assert feeds(engine) == {chat_id}  # the actor woke for that turn and is active
        await passivation_of(engine, chat_id)
        assert feeds(engine) == set()
        assert chat_registry(engine)["passivations"] == 3


async def test_shutdown_with_twenty_beats_in_flight_commits_them_within_the_bound(
    tmp_path: Path,
) -> None:
    backend = ScriptedBackend()
    settings = EngineSettings(
        db_path=tmp_path / "t.db",
        data_dir=tmp_path,
        classifier_timeout=30.0,
        chat_idle_timeout=0.3,
        shutdown_timeout=8.0,
    )
    # The guard only turns a hang into a failure; its deadline is set when shutdown begins.
    with trio.CancelScope() as guard:
        async with (
            open_engine(settings, narrative=backend, classifier=backend) as engine,
            AsyncExitStack() as watches,
        ):
            mira = await engine.create_bot("Mira", "barkeep", "")
            # One chat had its turn and went to sleep: shutdown must not wake it.
            asleep = (await engine.create_chat(mira.id)).id
            backend.push_narrative("Quick.", match="Quick question")
            await engine.send_turn(asleep, "Quick question")
            await engine.wait_settled(asleep)
            await passivation_of(engine, asleep)

            # Twenty chats stream from a model that stalls, and every classifier stalls too.
            backend.push_narrative(text="A long story that never ends", stall_after=2, keep=True)
            for name in ("state_update", "significance", "interjection", "lifecycle"):
                backend.push_classifier(name, stall=True, keep=True)
            streaming = [(await engine.create_chat(mira.id)).id for _ in range(20)]
            for chat_id in streaming:
                messages = await watches.enter_async_context(engine.watch(chat_id))
                await engine.send_turn(chat_id, "Tell me")
                await until(messages, Token)
            activations = chat_registry(engine)["activations"]
            assert activations == 21

            # As `troupe serve` does on SIGTERM: shut down, then leave (which shuts
            # down again). All of it must end within the bound a service manager allows.
            guard.deadline = trio.current_time() + 10
            await engine.shutdown()
    assert not guard.cancelled_caught and not guard.cancel_called
    assert chat_registry(engine)["activations"] == activations

    async with open_engine(settings, narrative=backend, classifier=backend) as engine:
        for chat_id in streaming:

            def last_beat(s: Store, chat_id: str = chat_id) -> Any:
                turn = s.timeline(chat_id)[-1]
                return turn, s.get_event(turn.event_id)

            turn, stored = await engine.store.run(last_beat)
            assert (turn.text, turn.truncated) == ("A long", True)
            assert stored.event.error == "shutdown"
        asleep_turns = await engine.store.run(lambda s: s.timeline(asleep))
        assert [t.text for t in asleep_turns] == ["Quick question", "Quick."]
