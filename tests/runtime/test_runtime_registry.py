"""Registries: one activation per key however first messages race; passivation and back."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from runtime import Actor, ActorFailed, RegistryStatistics, RestartPolicy, open_actor_system


class Store:
    """Stands in for the database the actors save to and load from."""

    def __init__(self, save_time: float = 0.0) -> None:
        self.saved: dict[str, int] = {}
        self.starts: list[str] = []
        self.live: set[str] = set()
        self.overlaps = 0
        self.save_time = save_time


class Counter(Actor):
    """Counts messages; loads the count in on_start and saves it in on_passivate."""

    def __init__(self, key: str, store: Store) -> None:
        self.key = key
        self.store = store
        self.count = 0

    async def on_start(self) -> None:
        if self.key in self.store.live:
            self.store.overlaps += 1  # two activations of one key at once
        self.store.live.add(self.key)
        self.store.starts.append(self.key)
        await trio.sleep(1)  # a slow load makes racing first messages likely
        self.count = self.store.saved.get(self.key, 0)

    async def handle(self, message: object) -> object:
        if message == "boom":
            raise RuntimeError("boom")
        if message == "work":
            self.start_work(trio.sleep, 100)
            return self.count
        self.count += 1
        return self.count

    async def on_passivate(self) -> None:
        await trio.sleep(self.store.save_time)
        self.store.saved[self.key] = self.count

    async def on_stop(self) -> None:
        self.store.live.discard(self.key)


async def test_racing_first_messages_activate_exactly_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    store = Store()
    async with open_actor_system() as system:
        chats = system.registry("chat", lambda key: Counter(key, store))
        results: list[int] = []

        async def hit(key: str) -> None:
            results.append(await chats.get(key).ask("hi"))

        async with trio.open_nursery() as nursery:
            for n in range(50):
                nursery.start_soon(hit, "chat:42" if n % 2 else "42")
        assert sorted(results) == list(range(1, 51))
        assert store.starts == ["42"]
        assert chats.statistics().activations == 1
        assert chats.active() == ["42"]
        assert system.actor("chat:42") is not None


async def test_tell_nowait_activates_too(autojump_clock: trio.testing.MockClock) -> None:
    store = Store()
    async with open_actor_system() as system:
        chats = system.registry("chat", lambda key: Counter(key, store), mailbox_size=2)
        ref = chats.get("1")
        assert ref.statistics() is None
        ref.tell_nowait("a")
        ref.tell_nowait("b")
        assert ref.address == "chat:1"
        assert await ref.ask("c") == 3


async def test_idle_actors_save_on_passivate_and_reload_on_start(
    autojump_clock: trio.testing.MockClock,
) -> None:
    store = Store()
    async with open_actor_system() as system:
        chats = system.registry("chat", lambda key: Counter(key, store), idle_timeout=30)
        ref = chats.get("7")
        assert await ref.ask("a") == 1
        await trio.sleep(20)
        assert await ref.ask("b") == 2  # a message restarts the idle clock
        await trio.sleep(20)
        assert chats.active() == ["7"]
        await trio.sleep(11)
        assert chats.active() == []
        assert store.saved == {"7": 2}
        assert chats.statistics() == RegistryStatistics(
            active=0, passivated=1, activations=1, passivations=1
        )
        # Sending to the passivated key wakes it transparently, state reloaded.
        assert await ref.ask("c") == 3
        assert store.starts == ["7", "7"]
        assert chats.statistics() == RegistryStatistics(
            active=1, passivated=0, activations=2, passivations=1
        )


async def test_running_work_keeps_an_actor_awake(
    autojump_clock: trio.testing.MockClock,
) -> None:
    store = Store()
    async with open_actor_system() as system:
        chats = system.registry("chat", lambda key: Counter(key, store), idle_timeout=30)
        ref = chats.get("7")
        await ref.ask("work")  # 100 seconds of work
        await trio.sleep(99)
        assert chats.active() == ["7"]
        await trio.sleep(2)  # work done at 101 s; the idle clock starts then
        assert chats.active() == ["7"]
        await trio.sleep(27)  # 129 s: 28 s after the work, 128 s after the last message
        assert chats.active() == ["7"]
        await trio.sleep(3)  # 132 s: idle since 131 s
        assert chats.active() == []
        assert chats.statistics().passivations == 1


async def test_the_passivation_hook_hears_of_each_key_that_went_to_sleep(
    autojump_clock: trio.testing.MockClock,
) -> None:
    store = Store(save_time=3)
    slept: list[tuple[str, bool]] = []
    async with open_actor_system() as system:

        def passivated(key: str) -> None:
            slept.append((key, chats.get(key).current() is None))

        chats = system.registry(
            "chat", lambda key: Counter(key, store), idle_timeout=30, on_passivated=passivated
        )
        assert chats.get("7").current() is None  # asking does not activate
        assert chats.active() == []
        assert await chats.get("7").ask("a") == 1  # 1 s: loaded
        assert await chats.get("8").ask("a") == 1  # 2 s
        current = chats.get("7").current()
        assert current is not None and current.address == "chat:7"
        await trio.sleep(30.5)  # 7 idle at 31 s and 8 at 32 s, both saving for 3 s...
        assert slept == []
        assert await chats.get("8").ask("b") == 2  # ...when a message wakes 8 up again
        assert slept == [("7", True)]  # called once the actor is gone, not while saving
        await current.wait_stopped()
        await trio.sleep(40)
        assert slept == [("7", True), ("8", True)]
        assert chats.statistics().passivations == 2


async def test_a_message_arriving_while_saving_wakes_the_same_actor_up(
    autojump_clock: trio.testing.MockClock,
) -> None:
    store = Store(save_time=3)
    async with open_actor_system() as system:
        chats = system.registry("chat", lambda key: Counter(key, store), idle_timeout=30)
        ref = chats.get("7")
        assert await ref.ask("a") == 1
        await trio.sleep(32)  # idle at 31 s, saving until 34 s
        stats = ref.statistics()
        assert stats is not None and stats.state == "passivating"
        assert await ref.ask("b") == 2  # waits for the save, then the reload
        assert store.overlaps == 0
        assert store.starts == ["7", "7"]
        assert chats.statistics().activations == 2
        assert chats.active() == ["7"]


async def test_a_key_that_failed_for_good_starts_afresh_on_its_next_message(
    autojump_clock: trio.testing.MockClock,
) -> None:
    store = Store()
    async with open_actor_system() as system:
        chats = system.registry(
            "chat", lambda key: Counter(key, store), policy=RestartPolicy.never()
        )
        ref = chats.get("7")
        with pytest.raises(ActorFailed):
            await ref.ask("boom")
        await trio.testing.wait_all_tasks_blocked()
        assert chats.active() == []
        assert chats.statistics().passivated == 0
        assert await ref.ask("hello") == 1
        assert chats.statistics().activations == 2


async def test_stopping_a_key_and_registry_misuse(
    autojump_clock: trio.testing.MockClock,
) -> None:
    store = Store()
    async with open_actor_system() as system:
        chats = system.registry("chat", lambda key: Counter(key, store))
        with pytest.raises(ValueError, match="already exists"):
            system.registry("chat", lambda key: Counter(key, store))
        await chats.get("1").ask("x")
        await chats.get("1").stop()
        assert chats.active() == []
        assert chats.statistics().passivated == 0
        await chats.get("never started").stop()  # nothing to stop: no error
        with pytest.raises(ValueError, match="idle_timeout"):
            system.registry("bad", lambda key: Counter(key, store), idle_timeout=0).get(
                "1"
            ).tell_nowait("x")
