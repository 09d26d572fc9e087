"""Actors: a task with a bounded mailbox that handles one message at a time.

An actor lives in a *cell* that its supervisor runs. The cell owns the
mailbox (which survives restarts, so queued messages are not lost), builds a
fresh actor instance from the factory on each start, and runs the mailbox
loop beside the actor's work nursery. Stopping the cell cancels both; the
actor's ``on_stop`` then runs shielded, with its own deadline.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
import trio

from ._errors import ActorFailed, ActorStopped, AskTimeout, MailboxFull, RestartIntensityExceeded
from ._policy import RestartPolicy, RestartWindow

log = logging.getLogger("troupe.runtime")


class Actor:
    """Subclass and override :meth:`handle`; messages arrive one at a time, in order.

    Exceptions of the types in ``replies_with`` raised by ``handle`` go to the
    asker as they are and do not crash the actor (a refusal is not a failure);
    any other exception crashes it, and its supervisor decides what follows.
    """

    address: str = ""
    replies_with: tuple[type[BaseException], ...] = ()
    _cell: _Cell | None = None

    async def on_start(self) -> None:
        """(Re)load state; runs before the first message of each activation."""

    async def handle(self, message: object) -> object:
        """Handle one message; the return value is the reply to ``ask``."""
        raise NotImplementedError

    async def on_passivate(self) -> None:
        """Save state before going idle-out; ``on_start`` reloads it."""

    async def on_stop(self) -> None:
        """Cleanup that must not be lost; runs shielded, with its own deadline."""

    def start_work(self, fn: Callable[..., Awaitable[object]], *args: object) -> trio.CancelScope:
        """Run ``fn(*args)`` in the actor's work nursery, beside the mailbox loop.

        The returned scope cancels just that work. An exception escaping it
        crashes the actor.
        """
        cell = self._cell
        if cell is None or cell.work is None:
            raise ActorStopped(f"{self.address} is not running")
        scope = trio.CancelScope()
        cell.work_running += 1

        async def run() -> None:
            try:
                with scope:
                    await fn(*args)
            finally:
                cell.work_running -= 1

        cell.work.start_soon(run)
        return scope


@attrs.define(eq=False)
class _Reply:
    """A one-shot reply slot; an asker that gives up abandons it."""

    done: trio.Event = attrs.Factory(trio.Event)
    value: object = None
    error: BaseException | None = None
    abandoned: bool = False

    def set(self, value: object = None, error: BaseException | None = None) -> None:
        if not self.done.is_set():
            self.value, self.error = value, error
            self.done.set()


class _Stop:
    """Mailbox sentinel: stop once the messages before it are handled."""


class _Passivate:
    """Mailbox sentinel: save and go idle-out."""


_Envelope = tuple[object, _Reply | None]


class ActorRef:
    """The address of an actor, and the only way to reach it."""

    def __init__(self, cell: _Cell) -> None:
        self._cell = cell

    @property
    def address(self) -> str:
        """The actor's address, e.g. ``chat:42``."""
        return self._cell.address

    def __repr__(self) -> str:
        return f"<ActorRef {self.address}>"

    async def tell(self, message: object) -> None:
        """Send without waiting for a reply; waits while the mailbox is full."""
        await self._cell.send((message, None))

    def tell_nowait(self, message: object) -> None:
        """Send without waiting at all; raises :class:`MailboxFull` when full."""
        self._cell.send_nowait((message, None))

    async def ask(self, message: object, timeout: float = math.inf) -> Any:
        """Send and wait for the reply, a timeout (:class:`AskTimeout`) or the actor's failure."""
        reply = _Reply()
        try:
            with trio.fail_after(timeout):
                await self._cell.send((message, reply))
                await reply.done.wait()
        except trio.TooSlowError:
            reply.abandoned = True
            raise AskTimeout(f"{self.address} did not answer within {timeout}s") from None
        except BaseException:
            reply.abandoned = True
            raise
        if reply.error is not None:
            raise reply.error
        return reply.value

    async def stop(self, drain: bool = True) -> None:
        """Stop the actor: after its queued messages (``drain``), or at once."""
        await self._cell.stop(drain)

    def statistics(self) -> dict[str, Any]:
        """Mailbox depth and bound, messages handled, restarts, state."""
        return self._cell.statistics()


class _Cell:
    """Runs one actor: mailbox loop, work nursery, restarts."""

    def __init__(
        self,
        address: str,
        factory: Callable[[], Actor],
        policy: RestartPolicy,
        mailbox_size: int,
        idle_timeout: float | None = None,
        stop_timeout: float = 5.0,
    ) -> None:
        self.address = address
        self.factory = factory
        self.policy = policy
        self.window = RestartWindow(policy)
        self.mailbox_size = mailbox_size
        self.send_channel, self.receive_channel = trio.open_memory_channel[_Envelope](
            mailbox_size
        )
        self.idle_timeout = idle_timeout
        self.stop_timeout = stop_timeout
        self.state = "starting"
        self.handled = 0
        self.work: trio.Nursery | None = None
        self.work_running = 0
        self.scope = trio.CancelScope()
        self.finished = trio.Event()
        self.passivated = False
        self.failure: BaseException | None = None
        self.on_passivating: Callable[[], None] | None = None
        self.on_leftover: Callable[[list[_Envelope]], None] | None = None

    # --- sending ---

    async def send(self, envelope: _Envelope) -> None:
        try:
            await self.send_channel.send(envelope)
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            raise ActorStopped(f"{self.address} is stopped") from None

    def send_nowait(self, envelope: _Envelope) -> None:
        try:
            self.send_channel.send_nowait(envelope)
        except trio.WouldBlock:
            raise MailboxFull(f"the mailbox of {self.address} is full") from None
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            raise ActorStopped(f"{self.address} is stopped") from None

    async def stop(self, drain: bool) -> None:
        if self.finished.is_set():
            return
        if drain:
            try:
                await self.send_channel.send((_Stop(), None))
            except (trio.ClosedResourceError, trio.BrokenResourceError):
                pass
        else:
            self.scope.cancel()
        await self.finished.wait()

    def statistics(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "state": self.state,
            "mailbox": self.send_channel.statistics().current_buffer_used,
            "mailbox_max": self.mailbox_size,
            "handled": self.handled,
            "restarts": self.window.total,
            "work": self.work_running,
        }

    # --- running ---

    async def run(self) -> None:
        """Supervise the actor until it stops for good."""
        try:
            with self.scope:
                while True:
                    crashed = await self._activation()
                    if self.state in ("stopping", "passivating"):
                        break
                    if crashed is None and self.policy.kind != "always":
                        break
                    if crashed is not None and self.policy.kind == "never":
                        self.failure = crashed
                        break
                    if not self.window.allow(trio.current_time()):
                        self.failure = RestartIntensityExceeded(
                            f"{self.address} crashed more than {self.policy.max_restarts} "
                            f"times in {self.policy.within}s; it stays down"
                        )
                        self.failure.__cause__ = crashed
                        log.error("%s", self.failure)
                        break
                    log.warning("restarting %s", self.address)
        finally:
            self.state = "passivated" if self.passivated else (
                "failed" if self.failure is not None else "stopped"
            )
            self.send_channel.close()
            self._fail_pending()
            self.finished.set()

    def _fail_pending(self) -> None:
        """Nobody will handle what is still queued: hand it on, or tell its askers."""
        leftover: list[_Envelope] = []
        while True:
            try:
                leftover.append(self.receive_channel.receive_nowait())
            except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
                break
        if self.passivated and leftover and self.on_leftover is not None:
            # Messages that raced with passivation go to the next activation.
            self.on_leftover(leftover)
            return
        for _message, reply in leftover:
            if reply is not None:
                error: BaseException = ActorStopped(f"{self.address} stopped")
                if self.failure is not None:
                    error = ActorFailed(f"{self.address} failed")
                    error.__cause__ = self.failure
                reply.set(error=error)

    async def _activation(self) -> BaseException | None:
        """One life of the actor; returns the crash, or None for a clean exit."""
        actor = self.factory()
        actor.address = self.address
        actor._cell = self
        self.state = "starting"
        current: list[_Reply | None] = [None]
        try:
            try:
                async with trio.open_nursery() as nursery:
                    self.work = nursery
                    await actor.on_start()
                    self.state = "running"
                    await self._loop(actor, current)
                    nursery.cancel_scope.cancel()
            finally:
                self.work = None
                self.work_running = 0
                with trio.CancelScope(shield=True) as cleanup:
                    cleanup.deadline = trio.current_time() + self.stop_timeout
                    try:
                        if self.passivated:
                            await actor.on_passivate()
                        await actor.on_stop()
                    except Exception:
                        log.exception("%s: cleanup failed", self.address)
        except Exception as exc:
            crash = _unwrap(exc)
            log.error("%s crashed", self.address, exc_info=crash)
            reply = current[0]
            if reply is not None:
                failed = ActorFailed(f"{self.address} crashed: {crash!r}")
                failed.__cause__ = crash
                reply.set(error=failed)
            return crash
        return None

    async def _loop(self, actor: Actor, current: list[_Reply | None]) -> None:
        receive = self.receive_channel
        while True:
            if self.idle_timeout is None:
                envelope = await receive.receive()
            else:
                with trio.move_on_after(self.idle_timeout) as idle:
                    envelope = await receive.receive()
                if idle.cancelled_caught:
                    if self.work_running == 0 and not receive.statistics().current_buffer_used:
                        self.passivated = True
                        self.state = "passivating"
                        if self.on_passivating is not None:
                            self.on_passivating()
                        return
                    continue
            message, reply = envelope
            if isinstance(message, _Stop):
                self.state = "stopping"
                return
            if reply is not None and reply.abandoned:
                continue  # the asker gave up before we got to it
            current[0] = reply
            try:
                result = await actor.handle(message)
            except actor.replies_with as refusal:
                if reply is not None:
                    reply.set(error=refusal)
            else:
                if reply is not None:
                    reply.set(result)
            current[0] = None
            self.handled += 1


def _unwrap(exc: BaseException) -> BaseException:
    """The one real error inside nursery groups, or the group when there are several."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


__all__ = ["Actor", "ActorRef"]
