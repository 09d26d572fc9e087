"""Restart policies: when a supervisor restarts a child, and how often at most."""

from __future__ import annotations

from collections import deque
from typing import Literal

import attrs

RestartKind = Literal["always", "on_failure", "never"]


@attrs.frozen
class RestartPolicy:
    """Restart ``always`` (even after a clean exit), ``on_failure``, or ``never``.

    At most ``max_restarts`` restarts within ``within`` seconds; one more crash
    escalates (:class:`RestartIntensityExceeded`) and the child stays down.
    """

    kind: RestartKind = "on_failure"
    max_restarts: int = 3
    within: float = 5.0

    @classmethod
    def always(cls, max_restarts: int = 3, within: float = 5.0) -> RestartPolicy:
        """Restart after any exit."""
        return cls("always", max_restarts, within)

    @classmethod
    def on_failure(cls, max_restarts: int = 3, within: float = 5.0) -> RestartPolicy:
        """Restart after a crash only."""
        return cls("on_failure", max_restarts, within)

    @classmethod
    def never(cls) -> RestartPolicy:
        """Never restart."""
        return cls("never", 0, 0.0)


class RestartWindow:
    """Counts restarts in the policy's sliding window."""

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
