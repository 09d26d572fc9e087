"""Running past one machine: shards of chats, their leases in PostgreSQL, fenced writes.

Owns: hashing a chat to one of a fixed number of shards; which live node
should own each shard (rendezvous hashing) and how shards move when nodes
come and go; the lease keeper, which holds this node's shards in PostgreSQL
with an epoch per grant and fences every write of the store against it.
See docs/scale-out.md.
"""

from ._leases import Fenced, LeaseKeeper, LeaseSettings, LeaseStatistics
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
    "Fenced",
    "Lease",
    "LeaseKeeper",
    "LeaseSettings",
    "LeaseStatistics",
    "NodeAddress",
    "NodeId",
    "Plan",
    "desired_owners",
    "node_id",
    "owner_by_rendezvous",
    "parse_node_id",
    "plan_round",
    "shard_of",
]
