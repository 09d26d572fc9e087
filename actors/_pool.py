"""The classifier pool: every classifier call of every chat goes through it.

Calls are bounded by the pool's own cap (the classifier backend's connection
count), and turn-critical calls take a free slot before background ones
(significance). One timeout covers the whole call, the wait for the pool's
slot and for the backend's own included, and every call has a safe default:
a classifier that fails, stalls or lies costs a default value, never a turn.

The pool is a plain object, not an actor: a call is an ordinary async
function over the limiter, so there is no mailbox to fill, no reply to lose
and nothing to crash. Once closed (on shutdown), every call in flight and
every later one yields its default at once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

import attrs
import trio

from llm import Backend, ClassifierRequest, ModelError, PriorityLimiter

log = logging.getLogger("troupe.actors.pool")

T = TypeVar("T")


class ClassifierPool:
    """Runs classifier calls concurrently, bounded, prioritised and each within ``timeout``."""

    def __init__(self, backend: Backend, *, capacity: int, timeout: float) -> None:
        if timeout <= 0:
            raise ValueError(f"the classifier timeout must be positive, got {timeout}")
        self.backend = backend
        self.limiter = PriorityLimiter(capacity)
        self.timeout = timeout
        self.calls = 0
        self.failures = 0
        self.timeouts = 0
        self.by_name: dict[str, int] = {}
        self.closed = False
        self._scopes: set[trio.CancelScope] = set()

    async def classify(
        self,
        request: ClassifierRequest,
        validate: Callable[[dict[str, object]], T],
        default: T,
        *,
        critical: bool = True,
    ) -> T:
        """The validated result of one classifier call, or ``default`` when anything fails.

        Returns within ``timeout`` seconds of being called, however long the
        wait for a slot, and at once when the pool is closed.
        """
        name = request.name
        self.calls += 1
        self.by_name[name] = self.by_name.get(name, 0) + 1
        if self.closed:
            self.failures += 1
            return default
        # One deadline for queueing and calling: a turn waits on this for no longer.
        with trio.CancelScope(deadline=trio.current_time() + self.timeout) as scope:
            self._scopes.add(scope)
            try:
                async with self.limiter.slot(urgent=critical):
                    raw = await self.backend.complete_json(request)
                return validate(raw)
            except ModelError as exc:
                log.warning("classifier %s failed (%s); using its default", name, exc)
            except Exception:
                log.exception("classifier %s raised; using its default", name)
            finally:
                self._scopes.discard(scope)
        if scope.cancelled_caught and not self.closed:
            self.timeouts += 1
            log.warning(
                "classifier %s gave no answer within %.1fs; using its default", name, self.timeout
            )
        self.failures += 1
        return default

    def close(self) -> None:
        """Refuse further calls: each call in flight and each later one yields its default now."""
        self.closed = True
        for scope in list(self._scopes):
            scope.cancel()

    def statistics(self) -> dict[str, Any]:
        """Calls made, failures (defaults used) and timeouts among them, calls by
        classifier, calls in flight, and the limiter's figures."""
        return {
            "calls": self.calls,
            "failures": self.failures,
            "timeouts": self.timeouts,
            "in_flight": len(self._scopes),
            "closed": self.closed,
            "by_name": dict(self.by_name),
            **attrs.asdict(self.limiter.statistics()),
        }
