"""What ``statistics()`` returns: frozen snapshots, as trio's own ``statistics()`` do.

A snapshot is taken at one instant and never changes afterwards; read its
fields by name. ``attrs.asdict(snapshot)`` turns one (and every snapshot
nested in it) into plain JSON-ready dicts and lists, with the field names as
keys. Don't build or subclass these: the runtime does.
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs


@attrs.frozen
class ActorStatistics:
    """One actor's figures, from :meth:`ActorRef.statistics`."""

    address: str
    """The actor's address, e.g. ``chat:42``."""
    state: str
    """starting, running, stopping, passivating, stopped, passivated or failed."""
    mailbox: int
    """Messages queued and not yet handled."""
    mailbox_max: int
    """Room in the mailbox; a ``tell`` past it waits (``tell_nowait`` raises)."""
    senders_waiting: int
    """Tasks blocked in ``tell`` for want of room."""
    handled: int
    """Messages handled so far, over every activation and restart."""
    restarts: int
    """Restarts after a crash or an exit, over the cell's life."""
    activations: int
    """Fresh starts and wake-ups from passivation (not restarts)."""
    work: int
    """Long work tasks running now."""
    children: int
    """Child actors alive now."""


@attrs.frozen
class RegistryStatistics:
    """A registry's figures, from :meth:`Registry.statistics`."""

    active: int
    """Keys with a live actor now."""
    passivated: int
    """Keys whose actor is passivated now."""
    activations: int
    """Starts of a fresh or passivated actor so far (restarts after a crash are not counted)."""
    passivations: int
    """Actors that idled out so far."""


@attrs.frozen
class SubscriptionStatistics:
    """One subscriber's figures, from :meth:`Subscription.statistics`."""

    depth: int
    """Items buffered and not yet read."""
    max_buffer: int
    """The bound on ``depth``."""
    received: int
    """Items read so far (``Lagged`` markers included)."""
    merged: int
    """Messages merged into the one buffered before them."""
    lagged: int
    """Times the buffer was dropped for a ``Lagged`` marker: times told to resync."""
    dropped: int
    """Messages discarded by those resyncs."""


@attrs.frozen
class TopicStatistics:
    """A topic's figures, from :meth:`Topic.statistics`: totals and each subscriber's own."""

    published: int
    """Messages published so far."""
    subscribers: int
    """Subscribers now."""
    merged: int
    """``merged`` summed over the subscribers now."""
    lagged: int
    """``lagged`` summed over the subscribers now."""
    dropped: int
    """``dropped`` summed over the subscribers now."""
    per_subscriber: tuple[SubscriptionStatistics, ...]
    """Each subscriber's figures, in the order they subscribed."""


@attrs.frozen
class SystemStatistics:
    """An actor system's figures, from :meth:`ActorSystem.statistics`."""

    actors: Mapping[str, ActorStatistics]
    """Every live actor's figures, by address."""
    registries: Mapping[str, RegistryStatistics]
    """Every registry's figures, by kind."""


__all__ = [
    "ActorStatistics",
    "RegistryStatistics",
    "SubscriptionStatistics",
    "SystemStatistics",
    "TopicStatistics",
]
