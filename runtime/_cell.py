"""The cell: runs one actor — its mailbox loop, its work, its restarts.

A cell outlives the actor instances it runs. It owns the mailbox, so
messages not yet handled when an instance crashes are handled by the next
one; it builds each instance from the factory; and it is the supervisor of
that one child, applying the restart policy and its intensity.

One activation (one instance's life) is a nursery: the mailbox loop runs in
its body and long work and child actors run as its tasks, so leaving the
activation, for whatever reason, cancels all of them at once. The actor's
``on_passivate`` and ``on_stop`` then run shielded, with a deadline.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable
from enum import Enum
from typing import TYPE_CHECKING

import trio

from ._actor import Actor
from ._errors import ActorFailed, ActorStopped, MailboxFull, RestartIntensityExceeded
from ._mailbox import Envelope, Reply
from ._policy import RestartPolicy, RestartWindow
from ._statistics import ActorStatistics

if TYPE_CHECKING:
    from ._system import ActorSystem

log = logging.getLogger("troupe.runtime")


class _End(Enum):
    """Why an activation's mailbox loop ended without a crash."""

    DRAINED = "drained"  # stop(drain=True): the closed mailbox ran empty
    EXITED = "exited"  # the actor called exit()
    IDLE = "idle"  # idle timeout with no work: passivate


class _Wake:
    """Mailbox sentinel that only wakes a waiting loop (see ``Actor.exit``)."""


_WAKE = _Wake()


class Cell:
    """Runs one actor at one address; see the module docstring."""

    def __init__(
        self,
        system: ActorSystem,
        address: str,
        factory: Callable[[], Actor],
        policy: RestartPolicy,
        mailbox_size: int,
        idle_timeout: float | None = None,
        parent: Cell | None = None,
    ) -> None:
        if mailbox_size < 1:
            # A rendezvous mailbox could not be closed without failing a
            # blocked sender whose message nobody will ever see.
            raise ValueError(f"mailbox_size must be at least 1, got {mailbox_size}")
        if idle_timeout is not None and idle_timeout <= 0:
            raise ValueError(f"idle_timeout must be positive, got {idle_timeout}")
        self.system = system
        self.address = address
        self.factory = factory
        self.policy = policy
        self.window = RestartWindow(policy)
        self.mailbox_size = mailbox_size
        self.idle_timeout = idle_timeout
        self.parent = parent
        self.send_channel, self.receive_channel = trio.open_memory_channel[Envelope](mailbox_size)
        self.state = "starting"
        self.handled = 0
        self.activations = 0
        self.actor: Actor | None = None
        self.work: trio.Nursery | None = None
        self.work_running = 0
        self.children: list[Cell] = []
        self.current: Reply | None = None
        self.last_activity = trio.current_time()
        self.idle_scope: trio.CancelScope | None = None
        self.scope = trio.CancelScope()
        self.hard_deadline = math.inf
        self.stopping = False
        self.finished = trio.Event()
        self.failure: BaseException | None = None
        self.loop_task: trio.lowlevel.Task | None = None
        self.on_activate: Callable[[], None] | None = None
        self.on_finished: list[Callable[[Cell], None]] = []

    # --- sending ---

    async def send(self, envelope: Envelope) -> None:
        """Queue ``envelope``, waiting for room; :class:`ActorStopped` if closed."""
        try:
            await self.send_channel.send(envelope)
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            raise ActorStopped(f"{self.address} is stopped") from None

    def send_nowait(self, envelope: Envelope) -> None:
        """Queue ``envelope`` or raise :class:`MailboxFull` / :class:`ActorStopped`."""
        try:
            self.send_channel.send_nowait(envelope)
        except trio.WouldBlock:
            raise MailboxFull(
                f"the mailbox of {self.address} is full ({self.mailbox_size} messages)"
            ) from None
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            raise ActorStopped(f"{self.address} is stopped") from None

    def wake_loop(self) -> None:
        """Make a loop that waits for mail look at its flags again."""
        try:
            self.send_channel.send_nowait((_WAKE, None))
        except (trio.WouldBlock, trio.ClosedResourceError, trio.BrokenResourceError):
            pass  # a full mailbox means the loop is busy and will look anyway

    # --- stopping ---

    async def stop(self, drain: bool) -> None:
        """Stop after the queued messages (``drain``) or at once; wait until stopped.

        Draining closes the mailbox first: later senders get
        :class:`ActorStopped`, what was queued is still handled.
        """
        if not self.finished.is_set():
            self.stopping = True
            if drain:
                self.send_channel.close()
            else:
                self.scope.cancel()
        if trio.lowlevel.current_task() is self.loop_task:
            return  # the actor stopping itself: it cannot wait for its own end
        await self.finished.wait()

    # --- work and children ---

    def start_work(
        self, fn: Callable[..., Awaitable[object]], args: tuple[object, ...]
    ) -> trio.CancelScope:
        """See :meth:`Actor.start_work`."""
        assert self.work is not None
        scope = trio.CancelScope()
        self.work_running += 1
        self._reset_idle()

        async def run() -> None:
            try:
                with scope:
                    await fn(*args)
            finally:
                self.work_running -= 1
                self.last_activity = trio.current_time()
                self._reset_idle()

        self.work.start_soon(run, name=f"{self.address} work {getattr(fn, '__name__', fn)}")
        return scope

    async def spawn_child(
        self,
        factory: Callable[[], Actor],
        name: str,
        policy: RestartPolicy,
        mailbox_size: int,
    ) -> Cell:
        """See :meth:`Actor.spawn`."""
        assert self.work is not None
        child = self.system._new_cell(
            factory, f"{self.address}/{name}", policy, mailbox_size, parent=self
        )
        self.children.append(child)
        child.on_finished.append(self._forget_child)

        async def run() -> None:
            await child.run()
            if isinstance(child.failure, RestartIntensityExceeded):
                raise child.failure  # escalate: this actor crashes in turn

        self.work.start_soon(run, name=child.address)
        await trio.lowlevel.checkpoint()
        return child

    def _forget_child(self, child: Cell) -> None:
        if child in self.children:
            self.children.remove(child)

    # --- introspection ---

    def statistics(self) -> ActorStatistics:
        """See :meth:`ActorRef.statistics`."""
        channel = self.send_channel.statistics()
        return ActorStatistics(
            address=self.address,
            state=self.state,
            mailbox=channel.current_buffer_used,
            mailbox_max=self.mailbox_size,
            senders_waiting=channel.tasks_waiting_send,
            handled=self.handled,
            restarts=self.window.total,
            activations=self.activations,
            work=self.work_running,
            children=len(self.children),
        )

    # --- running ---

    async def run(self) -> None:
        """Run and supervise the actor until it stops for good."""
        self.loop_task = trio.lowlevel.current_task()
        try:
            with self.scope:
                await self._supervise()
        except* Exception as group:
            # A crash that raced with a cancellation (stop, shutdown) arrives
            # grouped with the Cancelled; the stop wins, the crash is recorded.
            crash = _unwrap(group)
            self.failure = crash
            self.state = "failed"
            log.error(
                "%s crashed while stopping",
                self.address,
                exc_info=crash,
                extra={"actor": self.address},
            )
        finally:
            if self.state not in ("passivated", "failed"):
                self.state = "stopped"
            self.send_channel.close()
            self._fail_pending()
            self.finished.set()
            for callback in self.on_finished:
                callback(self)

    async def _supervise(self) -> None:
        fresh = True  # a first start or a wake-up, as opposed to a restart
        while not self.scope.cancel_called:
            if fresh:
                fresh = False
                self.activations += 1
                if self.on_activate is not None:
                    self.on_activate()
            outcome = await self._activation()
            if outcome is _End.IDLE:
                if self._mailbox_idle():
                    # No checkpoint between this check and the close: a message
                    # either made it in (and we reactivate) or finds us closed.
                    self.send_channel.close()
                    self.state = "passivated"
                    return
                fresh = True
                continue  # mail arrived while saving: wake up again
            if outcome is _End.DRAINED or self.stopping:
                if isinstance(outcome, BaseException):
                    self.failure = outcome
                return
            if outcome is _End.EXITED:
                if self.policy.kind != "always":
                    return
            elif self.policy.kind == "never":
                self.failure = outcome
                self.state = "failed"
                return
            if not self.window.allow(trio.current_time()):
                failure = RestartIntensityExceeded(
                    f"{self.address} ended more than {self.policy.max_restarts} times "
                    f"within {self.policy.within}s; it stays down"
                )
                if isinstance(outcome, BaseException):
                    failure.__cause__ = outcome
                self.failure = failure
                self.state = "failed"
                log.error("%s", failure, extra={"actor": self.address})
                return
            log.warning("%s: restarting", self.address, extra={"actor": self.address})

    def _mailbox_idle(self) -> bool:
        channel = self.send_channel.statistics()
        return channel.current_buffer_used == 0 and channel.tasks_waiting_send == 0

    async def _activation(self) -> _End | BaseException:
        """One instance's life; returns why it ended, or its crash."""
        try:
            actor = self.factory()
        except Exception as exc:
            log.error(
                "%s could not be built", self.address, exc_info=exc, extra={"actor": self.address}
            )
            return exc
        actor.address = self.address
        actor._cell = self
        self.actor = actor
        self.state = "starting"
        outcome: _End | BaseException | None = None
        try:
            async with trio.open_nursery() as nursery:
                self.work = nursery
                await actor.on_start()
                self.state = "running"
                self.last_activity = trio.current_time()
                outcome = await self._loop(actor)
                self.state = "stopping" if outcome is not _End.IDLE else "passivating"
                if outcome is _End.DRAINED and self.children:
                    async with trio.open_nursery() as children:
                        for child in list(self.children):
                            children.start_soon(child.stop, True)
                nursery.cancel_scope.cancel()
        except Exception as exc:
            outcome = _unwrap(exc)
            log.error("%s crashed", self.address, exc_info=outcome, extra={"actor": self.address})
            failed = ActorFailed(f"{self.address} crashed: {outcome!r}")
            failed.__cause__ = outcome
            self._answer_current(failed)
        finally:
            # Reached by cancellation too (stop without drain, shutdown).
            self._answer_current(ActorStopped(f"{self.address} stopped before answering"))
            self.work = None
            self.work_running = 0
            self.idle_scope = None
            await self._cleanup(actor, passivating=outcome is _End.IDLE)
        assert outcome is not None
        return outcome

    def _answer_current(self, error: BaseException) -> None:
        if self.current is not None:
            self.current.set(error=error)
            self.current = None

    async def _cleanup(self, actor: Actor, passivating: bool) -> None:
        with trio.CancelScope(shield=True) as cleanup:
            cleanup.deadline = min(trio.current_time() + actor.cleanup_timeout, self.hard_deadline)
            try:
                if passivating:
                    await actor.on_passivate()
                await actor.on_stop()
            except Exception:
                log.exception("%s: cleanup failed", self.address, extra={"actor": self.address})
        if cleanup.cancelled_caught:
            log.error(
                "%s: cleanup did not finish within its deadline",
                self.address,
                extra={"actor": self.address},
            )

    async def _loop(self, actor: Actor) -> _End:
        receive = self.receive_channel
        idle_timeout = self.idle_timeout
        replies_with = actor.replies_with
        while not actor._exit_requested:
            if idle_timeout is None:
                try:
                    message, reply = await receive.receive()
                except trio.EndOfChannel:
                    return _End.DRAINED
            else:
                with trio.CancelScope(deadline=self._idle_deadline()) as idle:
                    self.idle_scope = idle
                    try:
                        message, reply = await receive.receive()
                    except trio.EndOfChannel:
                        return _End.DRAINED
                self.idle_scope = None
                if idle.cancelled_caught:
                    if self.work_running == 0 and self._mailbox_idle():
                        return _End.IDLE
                    # Not idle after all: count this as activity, so the next
                    # deadline lies ahead and the loop cannot spin on a past one.
                    self.last_activity = trio.current_time()
                    continue
            if message is _WAKE:
                continue
            if reply is None:
                try:
                    await actor.handle(message)
                except replies_with as refusal:
                    log.warning("%s refused a told message: %r", self.address, refusal)
            elif reply.abandoned:
                continue  # the asker gave up before its turn came
            else:
                self.current = reply
                try:
                    result = await actor.handle(message)
                except replies_with as refusal:
                    reply.set(error=refusal)
                else:
                    reply.set(result)
                self.current = None
            self.handled += 1
            if idle_timeout is not None:
                self.last_activity = trio.current_time()
        return _End.EXITED

    def _idle_deadline(self) -> float:
        if self.idle_timeout is None or self.work_running:
            return math.inf
        return self.last_activity + self.idle_timeout

    def _reset_idle(self) -> None:
        """Work started or ended: move the deadline of a loop waiting for mail."""
        if self.idle_scope is not None:
            self.idle_scope.deadline = self._idle_deadline()

    def _fail_pending(self) -> None:
        """Nobody will handle what is still queued: tell each asker why."""
        while True:
            try:
                _message, reply = self.receive_channel.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
                break
            if reply is None:
                continue
            error: BaseException
            if self.failure is not None:
                error = ActorFailed(f"{self.address} failed before handling the message")
                error.__cause__ = self.failure
            else:
                error = ActorStopped(f"{self.address} stopped before handling the message")
            reply.set(error=error)


def _unwrap(exc: BaseException) -> BaseException:
    """The one real error inside nursery groups, or the group when there are several."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc
