"""The per-connection rate limit: a token bucket on trio's clock."""

from __future__ import annotations

import trio


class TokenBucket:
    """Allows ``rate`` messages a second on average and bursts of up to ``burst``.

    It reads :func:`trio.current_time`, so tests drive it with a MockClock
    instead of waiting.
    """

    def __init__(self, rate: float, burst: int) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("a token bucket needs a positive rate and a burst of at least 1")
        self.rate = rate
        self.burst = burst
        self._tokens = float(burst)
        self._stamp = trio.current_time()
        self.refused = 0

    @property
    def tokens(self) -> float:
        """Messages that may be sent right now (fractions fill up over time)."""
        self._refill()
        return self._tokens

    def _refill(self) -> None:
        now = trio.current_time()
        self._tokens = min(float(self.burst), self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    def take(self) -> bool:
        """Spend one message; False (and nothing spent) when the sender is too fast."""
        self._refill()
        if self._tokens < 1:
            self.refused += 1
            return False
        self._tokens -= 1
        return True
