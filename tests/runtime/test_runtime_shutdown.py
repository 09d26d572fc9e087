"""Shutdown: with drain, without, shielded cleanup, and a bound that always holds."""

from __future__ import annotations

import math

import pytest
import trio
import trio.testing

from runtime import Actor, ActorStopped, open_actor_system


class Beat(Actor):
    """Handles a number by "streaming" for that many seconds; commits in on_stop."""

    cleanup_timeout = 2.0

    def __init__(self, log: list[str], stop_time: float = 0.5) -> None:
        self.log = log
        self.stop_time = stop_time
        self.partial: list[str] = []

    async def handle(self, message: object) -> object:
        if message == "stop myself":
            assert self.address
            await self.self_ref().stop(drain=True)  # must not wait for itself
            return "stopping"
        assert isinstance(message, int | float)
        self.partial.append(f"streaming {message}")
        await trio.sleep(message)
        self.log.append(f"handled {message}")
        self.partial.clear()
        return message

    async def on_stop(self) -> None:
        # Cancelled or not, this still gets its time: shielded, own deadline.
        await trio.sleep(self.stop_time)
        self.log.append(f"{self.address} committed {self.partial}")


async def test_stop_with_drain_finishes_the_mailbox_and_refuses_newcomers(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: list[str] = []
    async with open_actor_system() as system:
        ref = await system.spawn(lambda: Beat(log), "c")
        for delay in (1, 2):
            await ref.tell(delay)
        answer: list[object] = []

        async def ask() -> None:
            answer.append(await ref.ask(3, timeout=60))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(ask)
            await trio.testing.wait_all_tasks_blocked()
            nursery.start_soon(ref.stop, True)
            await trio.testing.wait_all_tasks_blocked()
            with pytest.raises(ActorStopped):
                await ref.tell(4)  # the mailbox closed when the stop began
        assert answer == [3]
        assert log == ["handled 1", "handled 2", "handled 3", "c committed []"]
        assert ref.statistics().state == "stopped"


async def test_stop_without_drain_cancels_and_cleanup_still_runs(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: list[str] = []
    async with open_actor_system() as system:
        ref = await system.spawn(lambda: Beat(log), "c")
        errors: list[BaseException] = []

        async def ask(delay: float) -> None:
            try:
                await ref.ask(delay, timeout=100)  # AskTimeout would fail the test
            except ActorStopped as exc:
                errors.append(exc)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(ask, 10)  # in flight when the stop comes
            await trio.testing.wait_all_tasks_blocked()
            nursery.start_soon(ask, 1)  # still queued
            await trio.testing.wait_all_tasks_blocked()
            started = trio.current_time()
            await ref.stop(drain=False)
            assert trio.current_time() - started == pytest.approx(0.5)  # just the commit
        assert log == ["c committed ['streaming 10']"]
        assert [str(e) for e in errors] == [
            "c stopped before answering",
            "c stopped before handling the message",
        ]


async def test_an_actor_may_stop_itself_with_drain(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: list[str] = []
    async with open_actor_system() as system:
        ref = await system.spawn(lambda: Beat(log), "c")
        await ref.tell(1)
        assert await ref.ask("stop myself") == "stopping"
        with trio.fail_after(60):  # a regression fails, never hangs
            await ref.wait_stopped()
        assert log == ["handled 1", "c committed []"]


async def test_system_shutdown_holds_its_bound_with_stuck_actors_and_stuck_cleanup(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    log: list[str] = []
    async with open_actor_system(shutdown_timeout=1.5) as system:
        stuck = await system.spawn(lambda: Beat(log, stop_time=math.inf), "stuck")
        polite = await system.spawn(lambda: Beat(log), "polite")
        await stuck.tell(math.inf)
        await polite.tell(math.inf)
        await trio.testing.wait_all_tasks_blocked()
        exited_at = trio.current_time()
    # Both were cancelled; the polite one committed, the stuck cleanup was cut at the bound.
    assert trio.current_time() - exited_at == pytest.approx(1.5)
    assert "stuck: cleanup did not finish within its deadline" in caplog.text
    assert log == ["polite committed ['streaming inf']"]
    assert stuck.statistics().state == polite.statistics().state == "stopped"


async def test_system_shutdown_with_drain_drains_then_cancels_within_the_bound(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: list[str] = []
    async with open_actor_system(shutdown_timeout=10) as system:
        quick = await system.spawn(lambda: Beat(log), "quick")
        stuck = await system.spawn(lambda: Beat(log), "stuck")
        for delay in (1, 1):
            await quick.tell(delay)
        await stuck.tell(math.inf)
        started = trio.current_time()
        await system.shutdown(drain=True)
        took = trio.current_time() - started
        with pytest.raises(ActorStopped, match="shutting down"):
            await system.spawn(lambda: Beat(log), "late")
        await system.shutdown()  # a second call just returns
    assert log[:3] == ["handled 1", "handled 1", "quick committed []"]
    assert log[3:] == ["stuck committed ['streaming inf']"]
    # Half the bound to drain, then the stuck one's cleanup (0.5 s) after its cancel.
    assert took == pytest.approx(5.5)
    assert system.statistics().actors == {}
