"""Shards and who should own them: pure functions, no clock, no database.

A chat belongs to one of :data:`SHARDS` shards by a stable hash of its id
(blake2b, the same on every node and every run; Python's ``hash()`` is
salted per process). Which live node should own a shard is decided by
rendezvous (highest-random-weight) hashing: each node scores each shard and
the highest score wins. Every node computes the same answer from the same
list of live nodes, and a node joining or leaving moves only the shards it
wins or held, about ``1/N`` of them.

:func:`plan_round` turns one read of the lease table into what a node does
in its next round: take the free shards it should own, renew what it holds,
and hand over, a few at a time, what now belongs to another node.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Mapping
from typing import NewType

import attrs

SHARDS = 256
"""Shards in the cluster: fixed, since every node must hash chats to the same ones."""

NodeId = NewType("NodeId", str)
"""A node's identity, ``host:port:start``: a node started again is a new node."""


def shard_of(chat_id: str) -> int:
    """The shard of a chat, from 0 to ``SHARDS - 1``, the same in every process."""
    digest = hashlib.blake2b(chat_id.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % SHARDS


def node_id(host: str, port: int, start: int) -> NodeId:
    """The identity of the node listening on ``host:port`` that started at ``start``.

    ``start`` is any integer that differs between two runs on the same
    address (the start time in milliseconds, say), so a restarted node never
    inherits the leases or the liveness of its previous run.
    """
    if not host or any(c.isspace() for c in host):
        raise ValueError(f"a node's host must be a name without spaces, got {host!r}")
    if not 0 < port < 65536:
        raise ValueError(f"a node's port must be from 1 to 65535, got {port}")
    if start < 0:
        raise ValueError(f"a node's start must not be negative, got {start}")
    return NodeId(f"{host}:{port}:{start}")


@attrs.frozen
class NodeAddress:
    """The parts of a :data:`NodeId`."""

    host: str
    port: int
    start: int


def parse_node_id(text: str) -> NodeAddress:
    """Split ``host:port:start``; the host may itself hold colons (an IPv6 address)."""
    host, sep, rest = text.rpartition(":")
    host, sep2, port = host.rpartition(":")
    if not (sep and sep2 and port.isdigit() and rest.isdigit()):
        raise ValueError(f"a node id is host:port:start, got {text!r}")
    address = NodeAddress(host, int(port), int(rest))
    node_id(address.host, address.port, address.start)  # the same checks as when made
    return address


def _weight(node: NodeId, shard: int) -> int:
    digest = hashlib.blake2b(f"{shard}/{node}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def owner_by_rendezvous(shard: int, nodes: Collection[NodeId]) -> NodeId:
    """The node that should own ``shard`` among ``nodes``: the one with the highest weight.

    Ties (never seen with 64-bit weights, but possible) go to the greater
    node id, so the answer never depends on the order of ``nodes``.
    """
    if not nodes:
        raise ValueError("no live node to own a shard")
    return max(nodes, key=lambda node: (_weight(node, shard), node))


@attrs.frozen
class Lease:
    """One row of the lease table as last read: its owner, epoch, and whether it has run out."""

    owner: NodeId | None
    epoch: int
    expired: bool

    @property
    def free(self) -> bool:
        """Nobody holds it: it may be granted."""
        return self.owner is None or self.expired


@attrs.frozen
class Plan:
    """What a node does in one round, shards in ascending order."""

    acquire: tuple[int, ...]
    """Free shards this node should own: ask for a grant."""
    renew: tuple[int, ...]
    """Shards this node holds: extend them."""
    release: tuple[int, ...]
    """Held shards that belong to another live node: drain, then let go."""


def plan_round(
    leases: Mapping[int, Lease], live: Collection[NodeId], me: NodeId, max_moves: int
) -> Plan:
    """The round of node ``me`` given the lease table and the nodes alive.

    ``me`` counts as live whether or not its heartbeat was read: a node
    planning is running. A shard is acquired only by its desired owner and
    only when free, so a handover is always release-then-grant: the old
    owner drains and releases (``max_moves`` at most per round, so a node
    joining moves shards a few at a time), and the new one takes the shard
    in its next round. A shard missing from ``leases`` is left alone.
    """
    if max_moves < 1:
        raise ValueError(f"max_moves must be at least 1, got {max_moves}")
    nodes = set(live) | {me}
    acquire: list[int] = []
    renew: list[int] = []
    release: list[int] = []
    for shard in sorted(leases):
        lease = leases[shard]
        desired = owner_by_rendezvous(shard, nodes)
        if lease.free:
            if desired == me:
                acquire.append(shard)
        elif lease.owner == me:
            renew.append(shard)
            if desired != me and len(release) < max_moves:
                release.append(shard)
    return Plan(tuple(acquire), tuple(renew), tuple(release))


def desired_owners(live: Collection[NodeId]) -> dict[int, NodeId]:
    """Every shard's desired owner among ``live``."""
    return {shard: owner_by_rendezvous(shard, live) for shard in range(SHARDS)}
