"""What the gateway's ``statistics()`` return: frozen snapshots, as trio's own do.

The protocol's ``statistics`` answer carries ``attrs.asdict`` of a
:class:`GatewayStatistics`: the same figures as plain JSON, under the field
names, so the wire shape is these classes' shape.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs


@attrs.frozen
class OutboxStatistics:
    """One connection's send queue."""

    depth: int
    """Frames queued now."""
    capacity: int
    """Room in the queue; a full queue holds up that connection's watches and answers."""
    queued: int
    """Frames queued so far."""
    merged: int
    """Tokens merged into a queued token of the same beat so far."""
    high_water: int
    """The deepest the queue has been."""


@attrs.frozen
class ConnectionStatistics:
    """One WebSocket connection's figures."""

    connection: int
    """The connection's number in this process (the logs name it too)."""
    watching: tuple[str, ...]
    """The chats it has open, sorted."""
    queue_depth: int
    """Frames in its send queue now (``queue.depth``)."""
    queue: OutboxStatistics
    """Its send queue."""
    received: int
    """Frames read from the client."""
    sent: int
    """Frames written to the client."""
    rate_limited: int
    """Frames refused by its rate limit."""


@attrs.frozen
class GatewayStatistics:
    """The gateway's figures, each open connection's, and the engine's."""

    connections: int
    """WebSocket connections being served."""
    clients: int
    """WebSocket connections open or in their handshake (what ``max_clients`` caps)."""
    max_clients: int
    """The cap on ``clients``."""
    pending: int
    """Sockets still being routed: reading a request head, or answering a plain request."""
    accepted: int
    """WebSocket connections accepted so far."""
    refused: Mapping[str, int]
    """Requests refused so far, by HTTP status (as a string, as JSON keys are)."""
    per_connection: tuple[ConnectionStatistics, ...]
    """Each open connection's figures, oldest first."""
    engine: Mapping[str, Any]
    """The engine's figures: actors, the feeds of chats in use, the classifier pool, the
    narrative backend."""


__all__ = ["ConnectionStatistics", "GatewayStatistics", "OutboxStatistics"]
