"""Running past one machine: troupe on PostgreSQL and Redis, chats sharded over nodes.

Owns what lets several nodes share one deployment: hashing a chat to one of
a fixed number of shards; which live node should own each shard (rendezvous
hashing) and how shards move when nodes come and go; the lease keeper, which
holds this node's shards in PostgreSQL with an epoch per grant and fences
every write of the store against it; the Redis bus (frames fanned out
between nodes, requests routed to a chat's owner); and the node that wires
them to the engine and the gateway. Sits above ``web`` and ``actors``,
below ``troupe``. See docs/scale-out.md and docs/bus.md.
"""

from store import Fenced  # the store's refusal, raised by the lease keeper's fence

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
from ._leases import LeaseKeeper, LeaseSettings, LeaseStatistics
from ._node import Node, NodeSettings, open_node
from ._rpc import Handler
from ._shards import (
    SHARDS,
    Lease,
    NodeAddress,
    NodeId,
    Plan,
    desired_owners,
    node_id,
    owner_by_rendezvous,
    parse_node_id,
    plan_round,
    shard_of,
)

__all__ = [
    "SHARDS",
    "Bus",
    "BusClosed",
    "BusError",
    "BusSettings",
    "BusStatistics",
    "Fenced",
    "Gap",
    "Handler",
    "Lease",
    "LeaseKeeper",
    "LeaseSettings",
    "LeaseStatistics",
    "Node",
    "NodeAddress",
    "NodeId",
    "NodeSettings",
    "NodeUnreachable",
    "Plan",
    "RequestFailed",
    "Subscription",
    "chat_channel",
    "desired_owners",
    "node_id",
    "open_bus",
    "open_node",
    "owner_by_rendezvous",
    "parse_node_id",
    "plan_round",
    "shard_of",
]
