"""Restart policies: when a supervisor restarts a child, and how often at most."""

from __future__ import annotations

from collections import deque
from typing import Literal

import attrs

RestartKind = Literal["always", "on_failure", "never"]


@attrs.frozen
class RestartPolicy:
    """When a crashed (or exited) actor is rebuilt, and how often at most.

    ``always`` restarts after a crash and after a clean :meth:`Actor.exit`;
    ``on_failure`` only after a crash; ``never`` leaves the actor down.
    At most ``max_restarts`` restarts fit in any ``within``-second window;
    the next one escalates with :class:`RestartIntensityExceeded`.
    A stop asked for from outside (``stop()``, shutdown, passivation) is
    never followed by a restart.
    """

    kind: RestartKind = attrs.field(
        default="on_failure", validator=attrs.validators.in_(("always", "on_failure", "never"))
    )
    max_restarts: int = attrs.field(default=3, validator=attrs.validators.ge(0))
    within: float = attrs.field(default=5.0, validator=attrs.validators.ge(0))

    @classmethod
    def always(cls, max_restarts: int = 3, within: float = 5.0) -> RestartPolicy:
        """Restart after any end of the actor but a requested stop."""
        return cls("always", max_restarts, within)

    @classmethod
    def on_failure(cls, max_restarts: int = 3, within: float = 5.0) -> RestartPolicy:
        """Restart after a crash only."""
        return cls("on_failure", max_restarts, within)

    @classmethod
    def never(cls) -> RestartPolicy:
        """Leave the actor down after it ends, whatever the reason."""
        return cls("never", 0, 0.0)


class RestartWindow:
    """Counts one child's restarts in the policy's sliding window."""

    def __init__(self, policy: RestartPolicy) -> None:
        self.policy = policy
        self.times: deque[float] = deque()
        self.total = 0

    def allow(self, now: float) -> bool:
        """Record a restart at ``now`` if the policy allows one more."""
        while self.times and now - self.times[0] > self.policy.within:
            self.times.popleft()
        if len(self.times) >= self.policy.max_restarts:
            return False
        self.times.append(now)
        self.total += 1
        return True


DEFAULT_POLICY = RestartPolicy()
"""``on_failure``, at most 3 restarts in 5 seconds."""
