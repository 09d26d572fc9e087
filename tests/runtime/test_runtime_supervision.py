"""Supervision: crashes fail their askers, stay isolated, restart within an intensity."""

from __future__ import annotations

import logging

import pytest
import trio
import trio.testing

from runtime import (
    Actor,
    ActorFailed,
    ActorRef,
    ActorStopped,
    RestartIntensityExceeded,
    RestartPolicy,
    open_actor_system,
)


class Flaky(Actor):
    """Crashes on "boom" (or on "slow boom", once the gate opens).

    Counts what it handled in this life; records each start.
    """

    starts: list[str]

    def __init__(self, starts: list[str], gate: trio.Event | None = None) -> None:
        self.starts = starts
        self.gate = gate
        self.count = 0

    async def on_start(self) -> None:
        self.starts.append(self.address)

    async def handle(self, message: object) -> object:
        if message == "slow boom":
            assert self.gate is not None
            await self.gate.wait()
            raise RuntimeError("slow boom")
        if message == "boom":
            raise RuntimeError("boom")
        if message == "exit":
            self.exit()
            return "bye"
        self.count += 1
        return self.count


async def test_a_crash_fails_its_asker_is_logged_and_spares_the_others(
    caplog: pytest.LogCaptureFixture,
) -> None:
    starts: list[str] = []
    async with open_actor_system() as system:
        ref = await system.spawn(lambda: Flaky(starts), "chat:1", RestartPolicy.on_failure(3, 10))
        sibling = await system.spawn(lambda: Flaky(starts), "chat:2")
        assert await ref.ask("a") == 1
        with (
            caplog.at_level(logging.ERROR, logger="troupe.runtime"),
            pytest.raises(ActorFailed, match="chat:1 crashed") as info,
        ):
            await ref.ask("boom")
        assert isinstance(info.value.__cause__, RuntimeError)
        [record] = [r for r in caplog.records if "crashed" in r.getMessage()]
        assert record.getMessage() == "chat:1 crashed"
        assert record.exc_info is not None and record.exc_info[0] is RuntimeError
        assert "Traceback" in caplog.text and "boom" in caplog.text
        assert await sibling.ask("fine") == 1
        # A NEW instance: its state starts over, and on_start ran again.
        assert await ref.ask("b") == 1
        assert starts.count("chat:1") == 2
        assert ref.statistics().restarts == 1
        assert ref.statistics().activations == 1  # a restart is not an activation


async def test_queued_messages_survive_a_restart() -> None:
    starts: list[str] = []
    gate = trio.Event()
    async with open_actor_system() as system:
        ref = await system.spawn(lambda: Flaky(starts, gate), "flaky", mailbox_size=8)
        results: dict[str, object] = {}

        async def ask(message: str) -> None:
            try:
                results[message] = await ref.ask(message)
            except ActorFailed as exc:
                results[message] = exc

        async with trio.open_nursery() as nursery:
            nursery.start_soon(ask, "slow boom")
            await trio.testing.wait_all_tasks_blocked()
            nursery.start_soon(ask, "x")
            await trio.testing.wait_all_tasks_blocked()
            await ref.tell("told")
            gate.set()
        assert isinstance(results["slow boom"], ActorFailed)
        assert results["x"] == 1  # handled by the new instance
        assert await ref.ask("y") == 3


async def test_restart_intensity_escalates_and_the_top_level_child_stays_down(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    starts: list[str] = []
    gate = trio.Event()
    async with open_actor_system() as system:
        policy = RestartPolicy.on_failure(max_restarts=2, within=60)
        ref = await system.spawn(lambda: Flaky(starts, gate), "flaky", policy, mailbox_size=8)
        sibling = await system.spawn(lambda: Flaky(starts), "sibling")
        for _ in range(2):
            with pytest.raises(ActorFailed):
                await ref.ask("boom")
            await trio.sleep(1)
        assert ref.statistics().state == "running"
        # Queue one more ask behind the third crash: it fails along with it.
        async with trio.open_nursery() as nursery:
            failures: dict[str, BaseException] = {}

            async def ask(message: str) -> None:
                try:
                    await ref.ask(message)
                except ActorFailed as exc:
                    failures[message] = exc

            with caplog.at_level(logging.ERROR, logger="troupe.runtime"):
                for message in ("slow boom", "queued"):
                    nursery.start_soon(ask, message)
                    await trio.testing.wait_all_tasks_blocked()
                gate.set()
        assert isinstance(failures["slow boom"].__cause__, RuntimeError)
        assert isinstance(failures["queued"].__cause__, RestartIntensityExceeded)
        assert "flaky ended more than 2 times within 60s" in caplog.text
        with trio.fail_after(60):  # a regression fails, never hangs
            await ref.wait_stopped()
        assert ref.statistics().state == "failed"
        assert starts.count("flaky") == 3
        with pytest.raises(ActorStopped):
            await ref.ask("anything")
        assert await sibling.ask("still here") == 1


async def test_restarts_outside_the_window_are_forgiven(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_actor_system() as system:
        ref = await system.spawn(lambda: Flaky([]), "flaky", RestartPolicy.on_failure(1, 5))
        for _ in range(4):
            with pytest.raises(ActorFailed):
                await ref.ask("boom")
            await trio.sleep(6)
        assert await ref.ask("ok") == 1
        assert ref.statistics().restarts == 4


async def test_never_leaves_a_crashed_actor_down_and_on_failure_ignores_exits(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_actor_system() as system:
        never = await system.spawn(lambda: Flaky([]), "never", RestartPolicy.never())
        with pytest.raises(ActorFailed):
            await never.ask("boom")
        with trio.fail_after(60):  # a regression fails, never hangs
            await never.wait_stopped()
        assert never.statistics().state == "failed"

        quits = await system.spawn(lambda: Flaky([]), "quits", RestartPolicy.on_failure())
        assert await quits.ask("exit") == "bye"
        with trio.fail_after(60):  # a regression fails, never hangs
            await quits.wait_stopped()
        assert quits.statistics().state == "stopped"


async def test_always_restarts_after_a_clean_exit_too() -> None:
    starts: list[str] = []
    async with open_actor_system() as system:
        ref = await system.spawn(lambda: Flaky(starts), "always", RestartPolicy.always(5, 10))
        assert await ref.ask("a") == 1
        assert await ref.ask("exit") == "bye"
        assert await ref.ask("b") == 1
        assert len(starts) == 2
        assert ref.statistics().restarts == 1


class Parent(Actor):
    """Supervises one flaky child, rebuilt in every on_start."""

    def __init__(self, starts: list[str], children: list[ActorRef]) -> None:
        self.starts = starts
        self.children = children

    async def on_start(self) -> None:
        self.starts.append(self.address)
        child = await self.spawn(
            lambda: Flaky(self.starts), "child", RestartPolicy.on_failure(1, 60)
        )
        self.children.append(child)

    async def handle(self, message: object) -> object:
        return await self.children[-1].ask(message)


async def test_a_child_past_its_intensity_crashes_its_parent_which_restarts_it(
    autojump_clock: trio.testing.MockClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    starts: list[str] = []
    children: list[ActorRef] = []
    async with open_actor_system() as system:
        parent = await system.spawn(
            lambda: Parent(starts, children), "parent", RestartPolicy.on_failure(1, 60)
        )
        assert await parent.ask("hello") == 1
        assert children[0].address == "parent/child"
        assert system.statistics().actors["parent"].children == 1

        with caplog.at_level(logging.ERROR, logger="troupe.runtime"):
            with pytest.raises(ActorFailed):  # the child crashes once: restarted
                await children[0].ask("boom")
            with pytest.raises(ActorFailed):  # twice: escalates into the parent
                await children[0].ask("boom")
            with trio.fail_after(60):  # a regression fails, never hangs
                await children[0].wait_stopped()
            await trio.testing.wait_all_tasks_blocked()  # the parent handles the escalation
        assert children[0].statistics().state == "failed"
        assert "parent crashed" in caplog.text
        assert "RestartIntensityExceeded" in caplog.text
        # The parent restarted and built a fresh child.
        assert await parent.ask("again") == 1
        assert starts == ["parent", "parent/child", "parent/child", "parent", "parent/child"]
        assert parent.statistics().restarts == 1


async def test_an_actor_that_cannot_be_built_counts_as_a_crash() -> None:
    built: list[int] = []

    def factory() -> Actor:
        built.append(1)
        if len(built) == 1:
            raise RuntimeError("bad config")
        return Flaky([])

    async with open_actor_system() as system:
        ref = await system.spawn(factory, "fragile")
        assert await ref.ask("x") == 1
        assert ref.statistics().restarts == 1


def test_policies_refuse_nonsense() -> None:
    with pytest.raises(ValueError, match="kind"):
        RestartPolicy("sometimes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_restarts"):
        RestartPolicy.on_failure(max_restarts=-1)
    assert RestartPolicy.never() == RestartPolicy("never", 0, 0.0)
