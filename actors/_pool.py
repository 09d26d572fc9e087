"""The classifier pool: every classifier call of every chat goes through it.

Calls are bounded by the backend's connection cap, turn-critical calls go
before background ones (significance), and every call has a timeout and a
safe default: a classifier that fails, stalls or lies costs a default value,
never a turn.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from typing import Any, TypeVar

import attrs
import trio

from llm import Backend, ClassifierRequest, ModelError
from runtime import Actor

log = logging.getLogger("troupe.actors.pool")

T = TypeVar("T")


class PriorityLimiter:
    """A capacity limiter whose critical waiters are served before background ones."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.in_use = 0
        self._waiting: tuple[deque[trio.Event], deque[trio.Event]] = (deque(), deque())

    async def acquire(self, critical: bool) -> None:
        """Wait for a slot; critical callers jump the background queue."""
        if self.in_use < self.capacity and not any(self._waiting):
            self.in_use += 1
            await trio.lowlevel.checkpoint()
            return
        event = trio.Event()
        queue = self._waiting[0 if critical else 1]
        queue.append(event)
        try:
            await event.wait()
        except BaseException:
            if event.is_set():
                self.release()  # the slot was handed to us as we were cancelled
            else:
                queue.remove(event)
            raise

    def release(self) -> None:
        """Give the slot to the next waiter, critical first."""
        for queue in self._waiting:
            if queue:
                queue.popleft().set()
                return
        self.in_use -= 1

    def statistics(self) -> dict[str, int]:
        """Slots in use and waiters of each priority."""
        return {
            "in_use": self.in_use,
            "capacity": self.capacity,
            "waiting_critical": len(self._waiting[0]),
            "waiting_background": len(self._waiting[1]),
        }


@attrs.frozen
class Classify:
    """Run one classifier call; the result (or the default) is put in ``reply``."""

    request: ClassifierRequest
    validate: Callable[[Any], Any]
    default: Any
    critical: bool
    reply: _Reply


@attrs.define
class _Reply:
    done: trio.Event = attrs.Factory(trio.Event)
    value: Any = None


class ClassifierPool(Actor):
    """An actor that runs classifier calls concurrently, bounded and prioritised."""

    def __init__(self, backend: Backend, *, capacity: int, timeout: float) -> None:
        self.backend = backend
        self.limiter = PriorityLimiter(capacity)
        self.timeout = timeout
        self.calls = 0
        self.failures = 0
        self.by_name: dict[str, int] = {}

    async def handle(self, message: object) -> object:
        assert isinstance(message, Classify)
        self.start_work(self._run, message)
        return None

    async def _run(self, job: Classify) -> None:
        job.reply.value = job.default  # what the asker gets if we are cancelled
        try:
            job.reply.value = await self._call(job)
        finally:
            job.reply.done.set()

    async def _call(self, job: Classify) -> Any:
        name = job.request.name
        self.calls += 1
        self.by_name[name] = self.by_name.get(name, 0) + 1
        await self.limiter.acquire(job.critical)
        try:
            with trio.move_on_after(self.timeout):
                raw = await self.backend.complete_json(job.request)
                return job.validate(raw)
            log.warning("classifier %s timed out after %.1fs; using its default", name, self.timeout)
        except ModelError as exc:
            log.warning("classifier %s failed (%s); using its default", name, exc)
        except Exception:
            log.exception("classifier %s raised; using its default", name)
        finally:
            self.limiter.release()
        self.failures += 1
        return job.default

    def statistics(self) -> dict[str, Any]:
        """Calls made, failures (defaults used), calls by classifier, and the limiter."""
        return {
            "calls": self.calls,
            "failures": self.failures,
            "by_name": dict(self.by_name),
            **self.limiter.statistics(),
        }


async def classify(
    pool: Any,
    request: ClassifierRequest,
    validate: Callable[[Any], T],
    default: T,
    *,
    critical: bool = True,
) -> T:
    """Ask the pool (an ActorRef of :class:`ClassifierPool`) for one classifier result."""
    reply = _Reply()
    await pool.tell(Classify(request, validate, default, critical, reply))
    await reply.done.wait()
    return reply.value  # type: ignore[no-any-return]
