"""Actors: ordering, backpressure, ask, crashes, restarts, registry, shutdown."""

from __future__ import annotations

import logging
import math

import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from runtime import (
    Actor,
    ActorFailed,
    ActorStopped,
    AskTimeout,
    MailboxFull,
    RestartPolicy,
    open_actor_system,
)


class Recorder(Actor):
    """Records what it handles; answers asks with the running count."""

    def __init__(self, log: list[object]) -> None:
        self.log = log

    async def handle(self, message: object) -> object:
        if message == "boom":
            raise RuntimeError("boom")
        if message == "slow":
            await trio.sleep(10)
        if isinstance(message, tuple) and message[0] == "work":
            self.start_work(self.work, message[1])
            return None
        self.log.append(message)
        return len(self.log)

    async def work(self, event: trio.Event) -> None:
        try:
            await trio.sleep_forever()
        finally:
            event.set()


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers()), max_size=60))
def test_messages_keep_their_order_and_none_is_lost(ops: list[tuple[bool, int]]) -> None:
    async def main() -> None:
        log: list[object] = []
        async with open_actor_system() as system:
            ref = await system.spawn(lambda: Recorder(log), "rec", mailbox_size=4)
            for asking, value in ops:
                if asking:
                    assert await ref.ask(value) == len(log)
                else:
                    await ref.tell(value)
            await ref.ask("end")
        assert log == [v for _, v in ops] + ["end"]

    trio.run(main)


async def test_tell_waits_when_the_mailbox_is_full_and_tell_nowait_says_so(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: list[object] = []
    async with open_actor_system() as system:
        ref = await system.spawn(lambda: Recorder(log), "rec", mailbox_size=2)
        await ref.tell("slow")
        await trio.testing.wait_all_tasks_blocked()
        ref.tell_nowait(1)
        ref.tell_nowait(2)
        with pytest.raises(MailboxFull):
            ref.tell_nowait(3)
        started = trio.current_time()
        await ref.tell(3)  # blocks until the slow message is done
        assert trio.current_time() - started >= 10
        assert ref.statistics()["mailbox_max"] == 2
        await ref.ask("sync")
        assert log == ["slow", 1, 2, 3, "sync"]


async def test_ask_times_out_clearly_and_a_cancelled_asker_leaves_nothing(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: list[object] = []
    async with open_actor_system() as system:
        ref = await system.spawn(lambda: Recorder(log), "rec")
        await ref.tell("slow")
        with pytest.raises(AskTimeout, match="rec did not answer"):
            await ref.ask("late", timeout=1)
        with trio.move_on_after(1):
            await ref.ask("abandoned")
        assert await ref.ask("after") == 2
        assert log == ["slow", "after"]  # abandoned asks are not handled


async def test_a_crash_fails_its_asker_restarts_and_spares_the_others(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log: list[object] = []
    other: list[object] = []
    async with open_actor_system() as system:
        ref = await system.spawn(lambda: Recorder(log), "chat:1", RestartPolicy.on_failure(3, 10))
        sibling = await system.spawn(lambda: Recorder(other), "chat:2")
        with caplog.at_level(logging.ERROR, logger="troupe.runtime"):
            with pytest.raises(ActorFailed) as info:
                await ref.ask("boom")
        assert isinstance(info.value.__cause__, RuntimeError)
        assert "chat:1 crashed" in caplog.text
        assert "Traceback" in caplog.text or caplog.records[0].exc_info
        assert await ref.ask("alive") == 1
        assert await sibling.ask("fine") == 1
        assert ref.statistics()["restarts"] == 1


async def test_restart_intensity_escalates_and_the_actor_stays_down(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_actor_system() as system:
        ref = await system.spawn(lambda: Recorder([]), "flaky", RestartPolicy.on_failure(2, 60))
        for _ in range(3):
            with pytest.raises(ActorFailed):
                await ref.ask("boom")
        await trio.testing.wait_all_tasks_blocked()
        assert ref.statistics()["state"] == "failed"
        with pytest.raises(ActorStopped):
            await ref.ask("anything")


async def test_restarts_outside_the_window_are_forgiven(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_actor_system() as system:
        ref = await system.spawn(lambda: Recorder([]), "flaky", RestartPolicy.on_failure(1, 5))
        for _ in range(3):
            with pytest.raises(ActorFailed):
                await ref.ask("boom")
            await trio.sleep(6)
        assert await ref.ask("ok") == 1


async def test_work_is_cancelled_alone_or_with_the_actor() -> None:
    async with open_actor_system() as system:
        holder: list[Recorder] = []

        def make() -> Recorder:
            holder.append(Recorder([]))
            return holder[-1]

        ref = await system.spawn(make, "worker")
        first, second = trio.Event(), trio.Event()
        await ref.ask(("work", first))
        await ref.ask(("work", second))
        assert ref.statistics()["work"] == 2
        assert await ref.ask("still answering") == 1
        await ref.stop(drain=False)
        assert first.is_set() and second.is_set()


class Saver(Actor):
    saved: dict[str, int] = {}
    starts = 0

    def __init__(self, key: str) -> None:
        self.key = key
        self.count = 0

    async def on_start(self) -> None:
        type(self).starts += 1
        await trio.sleep(1)  # a slow load makes racing first messages likely
        self.count = self.saved.get(self.key, 0)

    async def on_passivate(self) -> None:
        self.saved[self.key] = self.count

    async def handle(self, message: object) -> object:
        self.count += 1
        return self.count


async def test_racing_first_messages_activate_exactly_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    Saver.saved, Saver.starts = {}, 0
    async with open_actor_system() as system:
        chats = system.registry("chat", Saver)
        results: list[int] = []

        async def hit() -> None:
            results.append(await chats.get("chat:42").ask("hi"))

        async with trio.open_nursery() as nursery:
            for _ in range(20):
                nursery.start_soon(hit)
        assert sorted(results) == list(range(1, 21))
        assert Saver.starts == 1
        assert chats.statistics()["activations"] == 1


async def test_passivation_saves_and_reactivation_reloads(
    autojump_clock: trio.testing.MockClock,
) -> None:
    Saver.saved, Saver.starts = {}, 0
    async with open_actor_system() as system:
        chats = system.registry("chat", Saver, idle_timeout=30)
        ref = chats.get("7")
        assert await ref.ask("a") == 1
        assert await ref.ask("b") == 2
        await trio.sleep(31)
        await trio.testing.wait_all_tasks_blocked()
        assert chats.active() == []
        assert Saver.saved == {"7": 2}
        assert await ref.ask("c") == 3
        assert chats.statistics() == {"active": 1, "activations": 2, "passivations": 1}


class Committer(Actor):
    committed: list[str] = []

    async def handle(self, message: object) -> object:
        await trio.sleep(message)  # type: ignore[arg-type]
        self.committed.append(f"handled {message}")
        return None

    async def on_stop(self) -> None:
        await trio.sleep(0.5)  # shielded cleanup still gets its time
        self.committed.append("partial beat committed")


async def test_shutdown_with_drain_finishes_the_mailbox(
    autojump_clock: trio.testing.MockClock,
) -> None:
    Committer.committed = []
    async with open_actor_system() as system:
        ref = await system.spawn(Committer, "c")
        for delay in (1, 2):
            await ref.tell(delay)
        await ref.stop(drain=True)
    assert Committer.committed == ["handled 1", "handled 2", "partial beat committed"]


async def test_shutdown_without_drain_cancels_but_cleanup_runs_within_the_bound(
    autojump_clock: trio.testing.MockClock,
) -> None:
    Committer.committed = []
    started = trio.current_time()
    async with open_actor_system(shutdown_timeout=5) as system:
        ref = await system.spawn(Committer, "c")
        await ref.tell(math.inf)  # stuck forever
        await ref.tell(1)
        await trio.testing.wait_all_tasks_blocked()
    assert Committer.committed == ["partial beat committed"]
    assert trio.current_time() - started <= 6
