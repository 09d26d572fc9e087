"""Long work: runs beside the mailbox loop, cancels alone or with the actor, crashes it."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from runtime import Actor, ActorFailed, ActorStopped, RestartPolicy, open_actor_system


class Streamer(Actor):
    """Starts a "beat" on request; "cancel" cancels the beat in flight."""

    def __init__(self, log: list[str]) -> None:
        self.log = log
        self.beat: trio.CancelScope | None = None

    async def handle(self, message: object) -> object:
        if message == "beat":
            self.beat = self.start_work(self.stream, "beat")
        elif message == "doomed beat":
            self.start_work(self.crash_later)
        elif message == "cancel" and self.beat is not None:
            self.beat.cancel()
        elif message == "finish":
            self.start_work(self.finish_then_exit)
        return len(self.log)

    async def stream(self, name: str) -> None:
        try:
            for n in range(1000):
                self.log.append(f"{name} {n}")
                await trio.sleep(1)
        finally:
            with trio.CancelScope(shield=True):
                await trio.sleep(0.1)  # committing the partial beat
                self.log.append(f"{name} committed")

    async def crash_later(self) -> None:
        await trio.sleep(5)
        raise ValueError("the backend lied")

    async def finish_then_exit(self) -> None:
        await trio.sleep(1)
        self.exit()  # from work: the loop is waiting for mail and must wake up


async def test_work_runs_beside_the_mailbox_and_cancels_alone(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: list[str] = []
    async with open_actor_system() as system:
        ref = await system.spawn(lambda: Streamer(log), "chat:1")
        await ref.tell("beat")
        await trio.sleep(2.5)
        assert ref.statistics().work == 1
        # The mailbox is not blocked by the beat: the actor answers at once.
        before = trio.current_time()
        assert await ref.ask("how far") == 3
        assert trio.current_time() == before
        await ref.tell("cancel")
        await trio.sleep(0.5)  # past the shielded commit
        assert log[-1] == "beat committed"
        assert ref.statistics().work == 0
        assert ref.statistics().state == "running"
        assert await ref.ask("alive") == 4


async def test_stopping_the_actor_cancels_all_its_work(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: list[str] = []
    async with open_actor_system() as system:
        ref = await system.spawn(lambda: Streamer(log), "chat:1")
        await ref.tell("beat")
        await ref.tell("beat")
        await trio.sleep(1.5)
        assert ref.statistics().work == 2
        await ref.stop(drain=False)
        assert log.count("beat committed") == 2
        assert ref.statistics().state == "stopped"


async def test_an_exception_escaping_work_crashes_the_actor(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: list[str] = []
    async with open_actor_system() as system:
        ref = await system.spawn(lambda: Streamer(log), "chat:1", RestartPolicy.on_failure(3, 60))
        await ref.tell("beat")
        await ref.tell("doomed beat")
        await trio.sleep(6)
        # The crash cancelled the sibling beat (whose commit still ran) and restarted.
        assert log[-1] == "beat committed"
        stats = ref.statistics()
        assert (stats.restarts, stats.work, stats.state) == (1, 0, "running")


async def test_an_asker_waiting_when_work_crashes_gets_actor_failed(
    autojump_clock: trio.testing.MockClock,
) -> None:
    class Waiter(Streamer):
        async def handle(self, message: object) -> object:
            if message == "wait for it":
                await trio.sleep_forever()
            return await super().handle(message)

    async with open_actor_system() as system:
        ref = await system.spawn(lambda: Waiter([]), "w")
        await ref.tell("doomed beat")
        with pytest.raises(ActorFailed) as info:
            await ref.ask("wait for it", timeout=60)
        assert isinstance(info.value.__cause__, ValueError)


async def test_exit_from_work_ends_the_activation(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_actor_system() as system:
        ref = await system.spawn(lambda: Streamer([]), "w", RestartPolicy.on_failure())
        await ref.tell("finish")
        with trio.fail_after(5):
            await ref.wait_stopped()
        assert ref.statistics().state == "stopped"


async def test_work_cannot_start_outside_a_running_actor() -> None:
    actor = Streamer([])
    with pytest.raises(ActorStopped, match="not running"):
        actor.start_work(actor.stream, "x")
