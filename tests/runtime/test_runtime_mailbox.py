"""Mailboxes: order, no loss, backpressure, ask with its timeout and its cancellation."""

from __future__ import annotations

import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from runtime import (
    DEFAULT_ASK_TIMEOUT,
    Actor,
    ActorError,
    ActorRef,
    ActorStopped,
    AskTimeout,
    MailboxFull,
    open_actor_system,
)


class Recorder(Actor):
    """Records what it handles; answers an ask with how many it has handled."""

    def __init__(self, log: list[object], gate: trio.Event | None = None) -> None:
        self.log = log
        self.gate = gate

    async def handle(self, message: object) -> object:
        if message == "wait" and self.gate is not None:
            await self.gate.wait()
        if isinstance(message, tuple) and message[0] == "yield":
            await trio.lowlevel.checkpoint()  # let senders interleave mid-message
        self.log.append(message)
        return len(self.log)


class Refusal(ActorError):
    pass


class Refuser(Actor):
    replies_with = (Refusal,)

    async def handle(self, message: object) -> object:
        if message == "no":
            raise Refusal("not allowed")
        return message


ops = st.lists(st.tuples(st.sampled_from(["tell", "ask", "nowait"]), st.booleans()), max_size=40)


@settings(max_examples=40, deadline=None)
@given(st.lists(ops, min_size=1, max_size=3), st.integers(min_value=1, max_value=4))
def test_each_senders_order_is_kept_and_nothing_is_lost(
    senders: list[list[tuple[str, bool]]], mailbox_size: int
) -> None:
    async def main() -> None:
        log: list[object] = []
        async with open_actor_system() as system:
            ref = await system.spawn(lambda: Recorder(log), "rec", mailbox_size=mailbox_size)

            async def send(sender: int, plan: list[tuple[str, bool]]) -> None:
                for n, (how, slow) in enumerate(plan):
                    message = ("yield" if slow else "fast", sender, n)
                    if how == "ask":
                        assert await ref.ask(message) >= n + 1
                    elif how == "nowait":
                        try:
                            ref.tell_nowait(message)
                        except MailboxFull:
                            await ref.tell(message)  # the caller's fallback
                    else:
                        await ref.tell(message)

            async with trio.open_nursery() as nursery:
                for sender, plan in enumerate(senders):
                    nursery.start_soon(send, sender, plan)
            await ref.ask("end")
        assert log[-1] == "end"
        for sender, plan in enumerate(senders):
            mine = [m for m in log[:-1] if isinstance(m, tuple) and m[1] == sender]
            assert [m[2] for m in mine] == list(range(len(plan)))
        assert len(log) == sum(len(plan) for plan in senders) + 1

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


async def test_tell_waits_while_the_mailbox_is_full_and_tell_nowait_refuses() -> None:
    log: list[object] = []
    gate = trio.Event()
    async with open_actor_system() as system:
        ref = await system.spawn(lambda: Recorder(log, gate), "rec", mailbox_size=2)
        await ref.tell("wait")
        await trio.testing.wait_all_tasks_blocked()  # "wait" is being handled
        ref.tell_nowait(1)
        ref.tell_nowait(2)
        with pytest.raises(MailboxFull, match="mailbox of rec is full"):
            ref.tell_nowait("refused")
        sent = trio.Event()

        async def blocked_sender() -> None:
            await ref.tell(3)
            sent.set()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(blocked_sender)
            await trio.testing.wait_all_tasks_blocked()
            assert not sent.is_set()  # backpressure: the sender waits
            stats = ref.statistics()
            assert (stats.mailbox, stats.mailbox_max, stats.senders_waiting) == (2, 2, 1)
            gate.set()
        assert await ref.ask("sync") == 5
        assert log == ["wait", 1, 2, 3, "sync"]
        assert ref.statistics().handled == 5


async def test_ask_times_out_clearly_and_the_late_message_is_skipped(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: list[object] = []
    gate = trio.Event()
    async with open_actor_system() as system:
        ref = await system.spawn(lambda: Recorder(log, gate), "rec")
        await ref.tell("wait")
        started = trio.current_time()
        with pytest.raises(AskTimeout, match=r"rec did not answer within 1\.5s"):
            await ref.ask("late", timeout=1.5)
        assert trio.current_time() - started == pytest.approx(1.5)
        gate.set()
        assert await ref.ask("after") == 2
        assert log == ["wait", "after"]


async def test_ask_without_a_timeout_gives_up_after_the_default(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: list[object] = []
    gate = trio.Event()
    async with open_actor_system() as system:
        ref = await system.spawn(lambda: Recorder(log, gate), "rec")
        await ref.tell("wait")  # the actor is stuck on this one
        started = trio.current_time()
        # The guard only turns a hang into a failure; the default must fire first.
        with trio.fail_after(10 * DEFAULT_ASK_TIMEOUT), pytest.raises(AskTimeout):
            await ref.ask("late")
        assert trio.current_time() - started == pytest.approx(DEFAULT_ASK_TIMEOUT)
        # A caller that legitimately waits longer says so.
        async with trio.open_nursery() as nursery:
            nursery.start_soon(ref.ask, "patient", 3 * DEFAULT_ASK_TIMEOUT)
            await trio.sleep(2 * DEFAULT_ASK_TIMEOUT)
            gate.set()
        assert log == ["wait", "patient"]


async def test_a_cancelled_asker_leaves_nothing_behind(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: list[object] = []
    gate = trio.Event()
    async with open_actor_system() as system:
        ref = await system.spawn(lambda: Recorder(log, gate), "rec", mailbox_size=1)

        # One asker cancelled while its message is being handled...
        async with trio.open_nursery() as nursery:
            nursery.start_soon(ref.ask, "wait")
            await trio.testing.wait_all_tasks_blocked()
            nursery.cancel_scope.cancel()
        # ...and one cancelled while its message is still queued.
        with trio.move_on_after(1):
            await ref.ask("queued")
        gate.set()
        # The actor neither blocked on the gone askers nor handled the queued one.
        assert await ref.ask("after", timeout=5) == 2
        assert log == ["wait", "after"]
        assert ref.statistics().mailbox == 0


async def test_a_refusal_goes_to_the_asker_and_the_actor_lives_on() -> None:
    async with open_actor_system() as system:
        ref = await system.spawn(Refuser, "refuser")
        with pytest.raises(Refusal, match="not allowed"):
            await ref.ask("no")
        await ref.tell("no")  # a told refusal has nobody to go to: logged only
        assert await ref.ask("yes") == "yes"
        assert ref.statistics().restarts == 0


async def test_sending_to_a_stopped_actor_says_it_is_stopped() -> None:
    async with open_actor_system() as system:
        ref = await system.spawn(lambda: Recorder([]), "rec")
        await ref.stop()
        assert ref.statistics().state == "stopped"
        with pytest.raises(ActorStopped, match="rec is stopped"):
            await ref.tell(1)
        with pytest.raises(ActorStopped):
            ref.tell_nowait(1)
        with pytest.raises(ActorStopped):
            await ref.ask(1, timeout=1)


async def test_refs_compare_by_actor_and_mailbox_size_is_checked() -> None:
    async with open_actor_system() as system:
        ref = await system.spawn(lambda: Recorder([]), "rec")
        assert system.actor("rec") == ref
        assert system.actor("nobody") is None
        assert isinstance(ref, ActorRef) and ref.address == "rec"
        with pytest.raises(ValueError, match="already runs at rec"):
            await system.spawn(lambda: Recorder([]), "rec")
        with pytest.raises(ValueError, match="mailbox_size"):
            await system.spawn(lambda: Recorder([]), "zero", mailbox_size=0)
