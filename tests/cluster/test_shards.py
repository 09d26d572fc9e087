"""Shards, rendezvous owners and the round planner: pure functions, checked by properties."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path
from random import Random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cluster import (
    SHARDS,
    Lease,
    NodeAddress,
    NodeId,
    desired_owners,
    node_id,
    owner_by_rendezvous,
    parse_node_id,
    plan_round,
    shard_of,
)

hosts = st.sampled_from(["10.0.0.1", "10.0.0.2", "node-a", "node-b", "::1", "fe80::2"])
node_ids = st.builds(node_id, hosts, st.integers(1, 65535), st.integers(0, 2_000_000_000_000))
node_sets = st.sets(node_ids, min_size=1, max_size=12)


def test_shard_of_is_stable_across_processes() -> None:
    """Another interpreter (another hash seed) puts chats in the same shards."""
    chats = [f"chat-{i}" for i in range(50)] + ["", "é", "ch at"]
    mine = [shard_of(c) for c in chats]
    code = f"from cluster import shard_of; print([shard_of(c) for c in {chats!r}])"
    theirs = subprocess.run(
        [sys.executable, "-c", code],
        check=True,
        capture_output=True,
        text=True,
        env={"PYTHONHASHSEED": "12345", "PYTHONPATH": str(Path(__file__).parents[2])},
    ).stdout
    assert theirs.strip() == repr(mine)
    assert all(0 <= s < SHARDS for s in mine)


@given(st.text())
def test_every_chat_falls_in_a_shard(chat_id: str) -> None:
    assert 0 <= shard_of(chat_id) < SHARDS
    assert shard_of(chat_id) == shard_of(chat_id)


def test_chats_spread_over_the_shards() -> None:
    counts = [0] * SHARDS
    for i in range(SHARDS * 40):
        counts[shard_of(f"c{i}")] += 1
    assert min(counts) > 10 and max(counts) < 80  # mean 40


@given(node_ids)
def test_node_id_round_trips(node: NodeId) -> None:
    parts = parse_node_id(node)
    assert node_id(parts.host, parts.port, parts.start) == node


def test_node_id_parts() -> None:
    assert parse_node_id("fe80::2:8080:17") == NodeAddress("fe80::2", 8080, 17)


@pytest.mark.parametrize(
    "text", ["", "host", "host:80", "host:port:1", "host:80:x", ":80:1", "h:0:1", "h:70000:1"]
)
def test_a_bad_node_id_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="node"):
        parse_node_id(text)


@given(node_sets, st.randoms())
def test_every_shard_has_exactly_one_desired_owner(nodes: set[NodeId], rnd: Random) -> None:
    """The owner is one of the nodes and does not depend on the order they are listed in."""
    listed = sorted(nodes)
    shuffled = list(nodes)
    rnd.shuffle(shuffled)
    for shard in range(SHARDS):
        owner = owner_by_rendezvous(shard, listed)
        assert owner in nodes
        assert owner_by_rendezvous(shard, shuffled) == owner


def test_no_owner_without_nodes() -> None:
    with pytest.raises(ValueError, match="no live node"):
        owner_by_rendezvous(0, [])


def _tolerance(n: int, p: float) -> float:
    """Five standard deviations of a binomial count, plus one for rounding."""
    return 5 * math.sqrt(n * p * (1 - p)) + 1


@settings(max_examples=60)
@given(node_sets, node_ids)
def test_a_joining_node_takes_about_its_share_and_only_it_gains(
    nodes: set[NodeId], newcomer: NodeId
) -> None:
    if newcomer in nodes:
        return
    before = desired_owners(nodes)
    after = desired_owners(nodes | {newcomer})
    moved = [s for s in range(SHARDS) if before[s] != after[s]]
    assert all(after[s] == newcomer for s in moved)
    assert sorted(moved) == sorted(s for s in range(SHARDS) if after[s] == newcomer)
    share = 1 / (len(nodes) + 1)
    assert abs(len(moved) - SHARDS * share) <= _tolerance(SHARDS, share)


@settings(max_examples=60)
@given(st.sets(node_ids, min_size=2, max_size=12), st.data())
def test_a_leaving_node_moves_only_its_own_shards(nodes: set[NodeId], data: st.DataObject) -> None:
    gone = data.draw(st.sampled_from(sorted(nodes)))
    before = desired_owners(nodes)
    after = desired_owners(nodes - {gone})
    for shard in range(SHARDS):
        if before[shard] != gone:
            assert after[shard] == before[shard]
        else:
            assert after[shard] != gone


@settings(max_examples=80)
@given(
    st.lists(node_ids, min_size=1, max_size=5, unique=True),
    st.data(),
    st.integers(1, 10),
)
def test_the_round_plan(nodes: list[NodeId], data: st.DataObject, max_moves: int) -> None:
    """Acquire only free shards I should own; renew all mine; release a few that aren't."""
    me = nodes[0]
    owners = {
        s: data.draw(st.sampled_from([None, *nodes, NodeId("dead:1:1")])) for s in range(SHARDS)
    }
    expired = data.draw(st.sets(st.integers(0, SHARDS - 1)))
    leases = {s: Lease(o, 3, s in expired) for s, o in owners.items()}
    plan = plan_round(leases, nodes, me, max_moves)
    desired = desired_owners(set(nodes))
    assert set(plan.acquire) == {
        s for s, lease in leases.items() if lease.free and desired[s] == me
    }
    assert set(plan.renew) == {
        s for s, lease in leases.items() if not lease.free and lease.owner == me
    }
    mine_elsewhere = {s for s in plan.renew if desired[s] != me}
    assert set(plan.release) <= mine_elsewhere
    assert len(plan.release) == min(max_moves, len(mine_elsewhere))
    assert list(plan.acquire) == sorted(plan.acquire)


def test_the_planner_counts_me_live() -> None:
    me = node_id("a", 1, 1)
    plan = plan_round({0: Lease(None, 0, False)}, [], me, 1)
    assert plan.acquire == (0,)


def test_max_moves_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_moves"):
        plan_round({}, [], node_id("a", 1, 1), 0)
