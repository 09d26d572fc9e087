"""What the backends' and the limiter's ``statistics()`` return: frozen snapshots.

As with trio's own ``statistics()``, a snapshot is taken at one instant and
never changes; read its fields by name. ``attrs.asdict(snapshot)`` gives the
same figures as a plain dict, under the field names.
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from ._types import JsonMode


@attrs.frozen
class LimiterStatistics:
    """A :class:`PriorityLimiter`'s figures."""

    in_use: int
    """Slots held now (never more than ``capacity``)."""
    capacity: int
    """Slots there are."""
    waiting_urgent: int
    """Narrative callers waiting for a slot."""
    waiting_background: int
    """Background classifier callers (significance) waiting for a slot."""
    waiting_critical: int = 0
    """Critical classifier callers (a turn waits on them) waiting for a slot."""


@attrs.frozen
class BackendStatistics:
    """What every backend's figures are: a snapshot; each backend adds its own fields."""


@attrs.frozen(kw_only=True)
class OpenAIStatistics(LimiterStatistics, BackendStatistics):
    """An :class:`OpenAIBackend`'s figures: its connection cap's, then its calls'."""

    calls: int
    """Narrative and classifier calls made."""
    retries: int
    """Requests sent again after a timeout, a dropped connection or a retryable status."""
    errors: int
    """Calls that failed in the end."""
    streaming: int
    """Narrative streams open now."""
    json_mode: JsonMode
    """How classifier calls ask for JSON now (``auto`` steps down as servers refuse)."""


@attrs.frozen
class LocalStatistics(BackendStatistics):
    """A :class:`LocalBackend`'s figures: its calls and its worker process."""

    calls: int
    """Narrative and classifier calls made."""
    requests: int
    """Requests sent to a worker."""
    tokens: int
    """Tokens streamed back."""
    errors: int
    """Calls that failed."""
    starts: int
    """Worker processes started."""
    restarts: int
    """Starts after the first."""
    crashes: int
    """Workers that died on their own."""
    kills: int
    """Workers ended by force (a request that would not stop)."""
    overlaps: int
    """Times a worker saw a request begin before the last one ended (should stay 0)."""
    loaded: bool
    """A worker is up with the model loaded."""
    worker_pid: int | None
    """The worker's process id, if there is one."""
    busy: bool
    """A request is with the worker now."""


@attrs.frozen
class ScriptedStatistics(BackendStatistics):
    """A :class:`ScriptedBackend`'s figures."""

    requests: int
    """Requests seen."""
    served: int
    """Requests answered from the script."""
    failed: int
    """Requests that found no reply queued for them."""
    pending: Mapping[str, int]
    """Replies still queued, per role (``narrative`` or the classifier's name)."""


__all__ = [
    "BackendStatistics",
    "LimiterStatistics",
    "LocalStatistics",
    "OpenAIStatistics",
    "ScriptedStatistics",
]
