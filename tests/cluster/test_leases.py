"""Lease keepers on a real PostgreSQL: convergence, pauses, fencing, joins, a restart.

Every keeper here runs with a 1.5 s lease (a round every 0.5 s). Waits on
the database are polls bounded in count and in time; waits on the keepers'
callbacks are trio events.
"""

from __future__ import annotations

import itertools
import threading
from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import Any

import attrs
import psycopg
import pytest
import trio

from cluster import (
    SHARDS,
    Fenced,
    LeaseKeeper,
    LeaseSettings,
    NodeId,
    desired_owners,
    node_id,
    shard_of,
)
from tests.support.servers import Changes, PostgresServer, postgres_server

FAST = LeaseSettings(ttl=1.5, max_moves=64)
"""Short leases, and handovers big enough that three nodes settle in a few rounds."""

SETTLE = 30.0
"""Seconds a cluster of keepers may take to settle (a few rounds, on a busy machine)."""

_names = itertools.count()


@pytest.fixture(scope="module")
def pg() -> Iterator[PostgresServer]:
    with postgres_server() as server:
        yield server


@pytest.fixture
def url(pg: PostgresServer) -> str:
    return pg.fresh_database(f"leases_{next(_names)}")


class Qmark:
    """A connection adapter as the store's: ``?`` marks, run in the connection's transaction."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn

    def execute(self, sql: str, params: Any) -> Any:
        return self.conn.execute(sql.replace("?", "%s"), params)


class Untouchable:
    """A connection the fence must not use: it refuses without asking the database."""

    def execute(self, sql: str, params: Any) -> Any:
        raise AssertionError("the fence queried the database")


@attrs.define(eq=False)
class Node:
    """A keeper and what its callbacks saw, in order."""

    keeper: LeaseKeeper
    log: list[tuple[str, int]]
    drains: list[tuple[int, int, bool]]
    """(shard, round, still held) at each drain."""
    lost: defaultdict[int, trio.Event]
    emptied: trio.Event
    scope: trio.CancelScope | None = None
    drained: trio.Event = attrs.Factory(trio.Event)
    """Set at each drain, then replaced."""

    @property
    def me(self) -> NodeId:
        return self.keeper.me


def make_node(
    url: str,
    port: int,
    settings: LeaseSettings = FAST,
    busy: dict[int, trio.Event] | None = None,
) -> Node:
    """A keeper on ``port``; a drain of a shard in ``busy`` waits for its event."""
    holding: dict[int, int] = {}

    async def acquired(shard: int, epoch: int) -> None:
        node.log.append(("acquired", shard))
        holding[shard] = epoch

    def lost(shard: int) -> None:
        node.log.append(("lost", shard))
        holding.pop(shard, None)
        node.lost[shard].set()
        if not holding:
            node.emptied.set()

    async def drain(shard: int) -> None:
        node.log.append(("drain", shard))
        node.drains.append((shard, keeper.statistics().rounds, shard in keeper.held()))
        node.drained.set()
        node.drained = trio.Event()
        if busy is not None and shard in busy:
            await busy[shard].wait()

    keeper = LeaseKeeper(
        url,
        node_id("127.0.0.1", port, 1),
        settings,
        on_acquired=acquired,
        on_lost=lost,
        drain=drain,
    )
    node = Node(keeper, [], [], defaultdict(trio.Event), trio.Event())
    return node


async def start(nursery: trio.Nursery, node: Node) -> None:
    """Run the node's keeper in a scope of its own, so the test can pause it."""

    async def run(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        with trio.CancelScope() as node.scope:
            await node.keeper.run(task_status=task_status)

    await nursery.start(run)


def pause(node: Node) -> None:
    """Stop the keeper's rounds, releasing nothing, as a stopped process would."""
    assert node.scope is not None
    node.scope.cancel()


Row = tuple[str | None, int, bool]


def read_table(url: str) -> dict[int, Row]:
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT shard, owner, epoch, expires_at > clock_timestamp() FROM shard_leases"
        ).fetchall()
    return {shard: (owner, epoch, valid) for shard, owner, epoch, valid in rows}


async def until(
    url: str, settled: Callable[[dict[int, Row]], bool], within: float = SETTLE
) -> dict[int, Row]:
    """The lease table once ``settled``, looked at again at each write of the lease tables."""
    with trio.fail_after(within):
        changes = await trio.to_thread.run_sync(Changes, url, ("shard_leases", "nodes"))
        try:
            while True:
                table = await trio.to_thread.run_sync(read_table, url)
                if settled(table):  # here, not on the thread: it reads the keepers too
                    return table
                await trio.to_thread.run_sync(changes.wait, within, abandon_on_cancel=True)
        finally:
            changes.close()


def converged(nodes: list[Node]) -> Callable[[dict[int, Row]], bool]:
    """Every shard held once, by its rendezvous owner, which knows it holds it."""
    desired = desired_owners([n.me for n in nodes])

    def check(table: dict[int, Row]) -> bool:
        if len(table) != SHARDS:
            return False
        for shard, (owner, epoch, valid) in table.items():
            if owner != desired[shard] or not valid or epoch < 1:
                return False
        for node in nodes:
            mine = {s: row[1] for s, row in table.items() if row[0] == node.me}
            if node.keeper.held() != mine:
                return False
        return True

    return check


def chat_in(shards: set[int] | dict[int, Any]) -> str:
    """A chat id that falls in one of ``shards``."""
    for i in range(100_000):
        if shard_of(f"chat-{i}") in shards:
            return f"chat-{i}"
    raise AssertionError("no chat in those shards")


def fence_in_transaction(url: str, keeper: LeaseKeeper, chat_id: str) -> None:
    """The fence as the store calls it: on another thread, inside a write transaction."""
    with psycopg.connect(url) as conn, conn.transaction():
        keeper.fence(Qmark(conn), chat_id)


async def fence(url: str, keeper: LeaseKeeper, chat_id: str) -> None:
    await trio.to_thread.run_sync(fence_in_transaction, url, keeper, chat_id)


async def test_keepers_converge_to_rendezvous_owners(url: str) -> None:
    nodes = [make_node(url, 9001 + i) for i in range(3)]
    async with trio.open_nursery() as nursery:
        for node in nodes:
            await start(nursery, node)
        table = await until(url, converged(nodes))
        held = [node.keeper.held() for node in nodes]
        # The others learn of the first one's last grant at their next round's read.
        ours = chat_in(held[0])
        await until(url, lambda _: all(n.keeper.owner_of(ours) == nodes[0].me for n in nodes))
        assert sum(len(h) for h in held) == SHARDS
        assert set().union(*held) == set(range(SHARDS))
        for node in nodes:
            stats = node.keeper.statistics()
            assert stats.grants >= stats.held > 0
            assert node.keeper.owner_of(ours) == nodes[0].me
        assert all(epoch >= 1 for _, epoch, _ in table.values())
        # Each writes in its own shards and is refused in the others, by its own reckoning.
        await fence(url, nodes[0].keeper, chat_in(held[0]))
        with pytest.raises(Fenced):
            nodes[0].keeper.fence(Untouchable(), chat_in(held[1]))
        assert nodes[0].keeper.statistics().fenced_rejections == 1
        nursery.cancel_scope.cancel()


async def test_a_paused_keeper_loses_its_shards_and_its_writes_are_refused(url: str) -> None:
    a, b = make_node(url, 9001), make_node(url, 9002)
    async with trio.open_nursery() as nursery:
        await start(nursery, a)
        await start(nursery, b)
        before = await until(url, converged([a, b]))
        had = a.keeper.held()
        assert had
        pause(a)
        chat = chat_in(had)

        def b_took_over(table: dict[int, Row]) -> bool:
            return all(owner == b.me and valid for owner, _, valid in table.values())

        after = await until(url, b_took_over)
        for shard, epoch in had.items():
            assert after[shard][1] == epoch + 1 == before[shard][1] + 1
        for shard in set(range(SHARDS)) - set(had):
            assert after[shard][1] == before[shard][1]  # B's own shards never moved
        assert b.keeper.held() == {s: row[1] for s, row in after.items()}
        # A's lease is over by its own clock too: it refuses without asking the database.
        assert a.keeper.held() == {}
        with pytest.raises(Fenced):
            await fence(url, a.keeper, chat)
        stats = a.keeper.statistics()
        assert (stats.fenced_rejections, stats.fenced_by_database) == (1, 0)
        await fence(url, b.keeper, chat)
        nursery.cancel_scope.cancel()


async def test_the_lease_row_refuses_a_writer_that_thinks_it_still_holds(url: str) -> None:
    """A grant A has not heard of (a clock gone wrong, say): the database fences A."""
    a = make_node(url, 9001, LeaseSettings(ttl=6.0))
    async with trio.open_nursery() as nursery:
        await start(nursery, a)
        await until(url, converged([a]))
        pause(a)
        chat = chat_in(a.keeper.held())
        shard = shard_of(chat)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(
                "UPDATE shard_leases SET owner = 'elsewhere:1:1', epoch = epoch + 1"
                " WHERE shard = %s",
                (shard,),
            )
        assert shard in a.keeper.held()
        with pytest.raises(Fenced):
            await fence(url, a.keeper, chat)
        stats = a.keeper.statistics()
        assert (stats.fenced_rejections, stats.fenced_by_database) == (1, 1)
        with trio.fail_after(5):
            await a.lost[shard].wait()  # on_lost, on the trio side, at once
        assert shard not in a.keeper.held()
        assert a.keeper.statistics().lost == 1
        # The other shards still write.
        await fence(url, a.keeper, chat_in(set(a.keeper.held())))
        nursery.cancel_scope.cancel()


async def test_a_grant_waits_for_a_write_in_flight(url: str) -> None:
    """The fence locks the lease row FOR SHARE: a grant of it waits until the write commits."""
    a = make_node(url, 9001, LeaseSettings(ttl=6.0))
    async with trio.open_nursery() as nursery:
        await start(nursery, a)
        await until(url, converged([a]))
        pause(a)
    chat = chat_in(a.keeper.held())
    shard = shard_of(chat)
    writing = threading.Event()
    commit = threading.Event()

    def write() -> None:
        with psycopg.connect(url) as conn, conn.transaction():
            a.keeper.fence(Qmark(conn), chat)
            writing.set()
            assert commit.wait(30)

    def grant() -> str:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("SET application_name = 'granting'")
            row = conn.execute(
                "UPDATE shard_leases SET owner = 'next:1:1', epoch = epoch + 1"
                " WHERE shard = %s RETURNING owner",
                (shard,),
            ).fetchone()
            assert row is not None
            return str(row[0])

    def grant_waits(_: dict[int, Row]) -> bool:
        with psycopg.connect(url, autocommit=True) as conn:
            row = conn.execute(
                "SELECT wait_event_type FROM pg_stat_activity WHERE application_name = 'granting'"
            ).fetchone()
        return row is not None and row[0] == "Lock"

    async with trio.open_nursery() as nursery:
        nursery.start_soon(trio.to_thread.run_sync, write)
        with trio.fail_after(10):
            await trio.to_thread.run_sync(writing.wait)
        granted: list[str] = []

        async def granting() -> None:
            granted.append(await trio.to_thread.run_sync(grant))

        nursery.start_soon(granting)
        await until(url, grant_waits)
        assert granted == []
        commit.set()
    assert granted == ["next:1:1"]


async def test_a_joining_keeper_takes_its_share_a_few_shards_a_round(url: str) -> None:
    settings = LeaseSettings(ttl=3.0, max_moves=12)
    a, b = make_node(url, 9001, settings), make_node(url, 9002, settings)
    async with trio.open_nursery() as nursery:
        await start(nursery, a)
        await start(nursery, b)
        before = await until(url, converged([a, b]))
        c = make_node(url, 9003, settings)
        await start(nursery, c)
        after = await until(url, converged([a, b, c]))
        moved = {s for s in range(SHARDS) if after[s][0] != before[s][0]}
        assert moved == set(c.keeper.held())
        assert all(after[s][0] == c.me for s in moved)
        assert SHARDS / 3 - 25 <= len(moved) <= SHARDS / 3 + 25
        for old in (a, b):
            drained = [shard for shard, _, _ in old.drains]
            assert sorted(drained) == sorted(s for s in moved if before[s][0] == old.me)
            # Drained while still held, a few a round, and given up only after the drain.
            assert all(still_held for _, _, still_held in old.drains)
            per_round: dict[int, int] = defaultdict(int)
            for _, round_, _ in old.drains:
                per_round[round_] += 1
            assert max(per_round.values()) <= settings.max_moves
            for shard in drained:
                assert old.log.index(("drain", shard)) < old.log.index(("lost", shard))
            assert old.keeper.statistics().releases == len(drained)
            assert old.keeper.statistics().lost == 0
        for shard in moved:
            assert after[shard][1] == before[shard][1] + 1
        nursery.cancel_scope.cancel()


async def test_a_handover_waits_rounds_for_a_turn_still_running(url: str) -> None:
    """A shard whose turns outlast a round's drain is kept, renewed, until they end."""
    settings = LeaseSettings(ttl=1.5, max_moves=64, drain_rounds=50)
    busy: dict[int, trio.Event] = defaultdict(trio.Event)
    a = make_node(url, 9001, settings, busy)
    async with trio.open_nursery() as nursery:
        await start(nursery, a)
        before = await until(url, converged([a]))
        b = make_node(url, 9002, settings)
        wanted = desired_owners([a.me, b.me])
        moving = min(s for s in range(SHARDS) if wanted[s] == b.me)
        busy[moving]  # its drain waits
        await start(nursery, b)

        def all_but_one_moved(table: dict[int, Row]) -> bool:
            return (
                all(table[s][0] == wanted[s] for s in range(SHARDS) if s != moving)
                and table[moving][0] == a.me
            )

        await until(url, all_but_one_moved)
        # Drained round after round, and renewed meanwhile: still a's, at its epoch.
        with trio.fail_after(SETTLE):
            while sum(1 for shard, _, _ in a.drains if shard == moving) < 3:
                await a.drained.wait()
        table = await trio.to_thread.run_sync(read_table, url)
        assert table[moving] == (a.me, before[moving][1], True)
        assert moving in a.keeper.held() and ("lost", moving) not in a.log
        busy[moving].set()  # the turn ends: the next round hands the shard over
        after = await until(url, converged([a, b]))
        assert after[moving][1] == before[moving][1] + 1
        assert a.keeper.statistics().lost == 0
        nursery.cancel_scope.cancel()


@pytest.mark.parametrize("down", ["stop", "kill"])
async def test_keepers_fence_themselves_while_postgresql_is_down_then_come_back(
    down: str,
) -> None:
    """PostgreSQL stopped (cleanly or not) for longer than a lease, then started again."""
    with postgres_server() as server:
        url = server.url
        a, b = make_node(url, 9001), make_node(url, 9002)
        async with trio.open_nursery() as nursery:
            await start(nursery, a)
            await start(nursery, b)
            before = await until(url, converged([a, b]))
            chat = chat_in(a.keeper.held())
            await trio.to_thread.run_sync(getattr(server, down))
            # Within a lease both give up every shard by their own clocks, and refuse writes
            # without a database to ask.
            with trio.fail_after(FAST.ttl * 4):
                await a.emptied.wait()
                await b.emptied.wait()
            assert a.keeper.held() == b.keeper.held() == {}
            with pytest.raises(Fenced):
                a.keeper.fence(Untouchable(), chat)
            await trio.to_thread.run_sync(server.start)
            after = await until(url, converged([a, b]))
            assert all(after[s][1] > before[s][1] for s in range(SHARDS))
            assert a.keeper.statistics().failed_rounds > 0
            # The first round back only renews and heartbeats: neither took the other's
            # share and had to hand it over.
            assert a.keeper.statistics().releases + b.keeper.statistics().releases == 0
            await fence(url, a.keeper, chat)
            nursery.cancel_scope.cancel()


async def test_a_leaving_keeper_drains_and_hands_over_everything(url: str) -> None:
    a, b = make_node(url, 9001), make_node(url, 9002)
    async with trio.open_nursery() as nursery:
        await start(nursery, a)
        await start(nursery, b)
        before = await until(url, converged([a, b]))
        had = a.keeper.held()
        pause(a)
        await a.keeper.leave()
        assert sorted(shard for shard, _, _ in a.drains) == sorted(had)
        assert all(still_held for _, _, still_held in a.drains)
        assert a.keeper.held() == {}
        stats = a.keeper.statistics()
        assert (stats.releases, stats.lost) == (len(had), 0)
        after = await until(url, converged([b]))
        for shard, epoch in had.items():
            assert after[shard][1] == epoch + 1 == before[shard][1] + 1
        with psycopg.connect(url, autocommit=True) as conn:
            nodes = conn.execute("SELECT node_id FROM nodes ORDER BY node_id").fetchall()
        assert nodes == [(b.me,)]
        nursery.cancel_scope.cancel()


async def test_a_write_fencing_several_chats_never_deadlocks_with_renewals(url: str) -> None:
    """The keeper locks one lease row at a time, so a write holding rows in any order is safe."""
    a = make_node(url, 9001, LeaseSettings(ttl=6.0))
    async with trio.open_nursery() as nursery:
        await start(nursery, a)
        await until(url, converged([a]))
        high, low = chat_in({250, 251, 252, 253, 254, 255}), chat_in({0, 1, 2, 3, 4, 5})
        fenced_high = threading.Event()
        go_on = threading.Event()

        def write() -> None:
            with psycopg.connect(url) as conn, conn.transaction():
                a.keeper.fence(Qmark(conn), high)
                fenced_high.set()
                assert go_on.wait(30)
                a.keeper.fence(Qmark(conn), low)

        def renewal_waits(_: dict[int, Row]) -> bool:
            with psycopg.connect(url, autocommit=True) as conn:
                row = conn.execute(
                    "SELECT wait_event_type FROM pg_stat_activity WHERE application_name = %s",
                    (f"troupe-leases {a.me}",),
                ).fetchone()
            return row is not None and row[0] == "Lock"

        async with trio.open_nursery() as writes:
            writes.start_soon(trio.to_thread.run_sync, write)
            with trio.fail_after(10):
                await trio.to_thread.run_sync(fenced_high.wait)
            await until(url, renewal_waits)  # the next round waits on the high row
            go_on.set()
        await until(url, converged([a]))
        assert a.keeper.statistics().failed_rounds == 0
        nursery.cancel_scope.cancel()


@pytest.mark.parametrize(
    ("kwargs", "complaint"),
    [
        ({"ttl": 0}, "ttl"),
        ({"ttl": 3, "margin": 2}, "margin"),
        ({"ttl": 3, "node_ttl": 1}, "node_ttl"),
        ({"ttl": 3, "drain_timeout": 2}, "drain_timeout"),
        ({"max_moves": 0}, "max_moves"),
    ],
)
def test_settings_that_cannot_work_are_refused(kwargs: dict[str, Any], complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        LeaseSettings(**kwargs)


def test_settings_follow_the_ttl() -> None:
    settings = LeaseSettings(ttl=3.0)
    assert (settings.interval, settings.margin, settings.node_ttl) == (1.0, 0.5, 3.0)
    assert settings.drain_timeout == 1.0


def test_a_keeper_needs_a_node_id() -> None:
    with pytest.raises(ValueError, match="host:port:start"):
        LeaseKeeper("postgresql://127.0.0.1/x", NodeId("nobody"))


async def test_a_quick_restart_of_postgresql_costs_no_shard(url: str, pg: PostgresServer) -> None:
    """Back well before the leases run out: the keepers reconnect and renew, epochs unchanged."""
    settings = LeaseSettings(ttl=6.0)
    a, b = make_node(url, 9001, settings), make_node(url, 9002, settings)
    async with trio.open_nursery() as nursery:
        await start(nursery, a)
        await start(nursery, b)
        before = await until(url, converged([a, b]))
        await trio.to_thread.run_sync(pg.restart)

        def both_noticed(table: dict[int, Row]) -> bool:
            noticed = all(n.keeper.statistics().failed_rounds > 0 for n in (a, b))
            return noticed and converged([a, b])(table)

        after = await until(url, both_noticed)
        assert {s: row[:2] for s, row in after.items()} == {
            s: row[:2] for s, row in before.items()
        }
        assert a.keeper.statistics().lost == b.keeper.statistics().lost == 0
        await fence(url, a.keeper, chat_in(a.keeper.held()))
        nursery.cancel_scope.cancel()
