"""The classifier pool: every classifier call of every chat goes through it.

The pool has no cap of its own: the backend's one connection cap bounds
classifier calls and narrative beats together, and picks each call's place
in line from the request (``critical`` passes, which a turn waits on, before
background ones; narrative beats before both). One timeout covers the whole
call, the wait for the backend's slot included, and every call has a safe
default: a classifier that fails, stalls or lies costs a default value,
never a turn.

The pool is a plain object, not an actor: a call is an ordinary async
function over the backend, so there is no mailbox to fill, no reply to lose
and nothing to crash. Once closed (on shutdown), every call in flight and
every later one yields its default at once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

import trio

from llm import Backend, ClassifierRequest, ModelError, PriorityLimiter

log = logging.getLogger("troupe.actors.pool")

T = TypeVar("T")


class ClassifierPool:
    """Runs classifier calls on ``backend``, each within ``timeout``, with counters."""

    def __init__(self, backend: Backend, *, timeout: float) -> None:
        if timeout <= 0:
            raise ValueError(f"the classifier timeout must be positive, got {timeout}")
        self.backend = backend
        self.timeout = timeout
        self.calls = 0
        self.critical = 0
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
    ) -> T:
        """The validated result of one classifier call, or ``default`` when anything fails.

        Returns within ``timeout`` seconds of being called, however long the
        wait for the backend's slot, and at once when the pool is closed.
        """
        name = request.name
        self.calls += 1
        self.critical += request.critical
        self.by_name[name] = self.by_name.get(name, 0) + 1
        if self.closed:
            self.failures += 1
            return default
        # One deadline for queueing and calling: a turn waits on this for no longer.
        with trio.move_on_after(self.timeout) as scope:
            self._scopes.add(scope)
            try:
                return validate(await self.backend.complete_json(request))
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

    def statistics(self) -> dict[str, object]:
        """Calls made (critical ones among them), failures (defaults used) and timeouts,
        calls by classifier, calls in flight, and the backend's connection cap.

        The cap's figures (``in_use``, ``capacity``, ``waiting_*``) are the
        backend's one limiter, narrative beats included; a backend without a cap
        reports its classifier calls in flight as ``in_use`` and ``capacity`` null.
        """
        limiter = getattr(self.backend, "limiter", None)
        if isinstance(limiter, PriorityLimiter):
            cap = limiter.statistics()
            in_use, capacity = cap.in_use, cap.capacity
            waiting = (cap.waiting_urgent, cap.waiting_critical, cap.waiting_background)
        else:
            in_use, capacity, waiting = len(self._scopes), None, (0, 0, 0)
        return {
            "calls": self.calls,
            "critical": self.critical,
            "failures": self.failures,
            "timeouts": self.timeouts,
            "in_flight": len(self._scopes),
            "closed": self.closed,
            "by_name": dict(self.by_name),
            "in_use": in_use,
            "capacity": capacity,
            "waiting_urgent": waiting[0],
            "waiting_critical": waiting[1],
            "waiting_background": waiting[2],
        }
