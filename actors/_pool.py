"""The classifier pool: every classifier call of every chat goes through it.

Calls are bounded by the backend's connection cap, turn-critical calls go
before background ones (significance), and every call has a timeout and a
safe default: a classifier that fails, stalls or lies costs a default value,
never a turn.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

import attrs
import trio

from llm import Backend, ClassifierRequest, ModelError, PriorityLimiter
from runtime import Actor

log = logging.getLogger("troupe.actors.pool")

T = TypeVar("T")


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
        await self.limiter.acquire(urgent=job.critical)
        try:
            with trio.move_on_after(self.timeout):
                raw = await self.backend.complete_json(job.request)
                return job.validate(raw)
            log.warning(
                "classifier %s timed out after %.1fs; using its default", name, self.timeout
            )
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
