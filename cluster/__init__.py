"""Running troupe on several machines at once.

Owns what lets nodes share the work of one deployment: shards (which node
owns which chat), leases (how a node holds a shard, fenced by epochs kept in
PostgreSQL), the Redis bus (frames fanned out between nodes, requests routed
to a chat's owner) and the node that wires them together. Sits above
``web`` and ``actors``, below ``troupe``. See docs/bus.md.
"""

from ._bus import (
    Bus,
    BusClosed,
    BusError,
    BusSettings,
    BusStatistics,
    NodeUnreachable,
    RequestFailed,
    chat_channel,
    open_bus,
)
from ._fanout import Gap, Subscription
from ._rpc import Handler

__all__ = [
    "Bus",
    "BusClosed",
    "BusError",
    "BusSettings",
    "BusStatistics",
    "Gap",
    "Handler",
    "NodeUnreachable",
    "RequestFailed",
    "Subscription",
    "chat_channel",
    "open_bus",
]
