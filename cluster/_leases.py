"""The lease keeper: which shards this node holds, kept in PostgreSQL, fenced by epochs.

Every node runs one keeper. Every third of the lease's TTL it runs a round
on a connection of its own: heartbeat, read the live nodes and the lease
table, plan (:func:`cluster.plan_round`), renew what it holds, ask for the
free shards it should own, and hand over, after draining them, the shards
that now belong to another node. PostgreSQL's clock decides every expiry,
so the nodes' clocks never have to agree; each node measures only its own
monotonic time, to stop writing before its lease can run out (self-fencing).

The store calls :meth:`LeaseKeeper.fence` inside every write transaction:
the write goes through only if this node still holds the chat's shard at the
epoch it was granted, both by its own reckoning and by the lease row, which
the check locks ``FOR SHARE`` until the write commits. The protocol and the
argument for it are in docs/scale-out.md.

psycopg's calls block: they run on a worker thread, one at a time (a
``CapacityLimiter(1)``), and only there is the connection touched.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, Protocol, TypeVar, cast

import attrs
import psycopg
import trio

from store import Fenced

from ._shards import SHARDS, Lease, NodeId, parse_node_id, plan_round, shard_of

log = logging.getLogger("troupe.cluster")

T = TypeVar("T")

SCHEMA_LOCK = 0x74726F7570650001
"""The advisory lock that keeps two nodes from creating the tables at once."""

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS nodes (
        node_id TEXT PRIMARY KEY,
        address TEXT NOT NULL,
        started_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
        heartbeat_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
    )""",
    """CREATE TABLE IF NOT EXISTS shard_leases (
        shard INTEGER PRIMARY KEY CHECK (shard >= 0),
        owner TEXT,
        epoch BIGINT NOT NULL DEFAULT 0,
        expires_at TIMESTAMPTZ NOT NULL DEFAULT '-infinity'
    )""",
)

SEED = "INSERT INTO shard_leases (shard) SELECT generate_series(0, %s - 1) ON CONFLICT DO NOTHING"

HEARTBEAT = """INSERT INTO nodes (node_id, address) VALUES (%s, %s)
    ON CONFLICT (node_id) DO UPDATE SET heartbeat_at = clock_timestamp()"""

LIVE_NODES = """SELECT node_id FROM nodes
    WHERE heartbeat_at > clock_timestamp() - make_interval(secs => %s)"""

FORGET_NODE = "DELETE FROM nodes WHERE node_id = %s"

FORGET_SILENT = """DELETE FROM nodes
    WHERE heartbeat_at < clock_timestamp() - make_interval(secs => %s)"""
"""Nodes silent for a long while (``SILENT_FOR`` node TTLs) are forgotten when a node registers."""

SILENT_FOR = 1000

READ_LEASES = """SELECT shard, owner, epoch, expires_at < clock_timestamp() FROM shard_leases"""

# Grants, renewals and releases change one row per statement, each in its own
# transaction: the keeper never holds one lease row while it waits for another, so it
# cannot deadlock with a write transaction that fenced several chats in any order.

GRANT = """UPDATE shard_leases
    SET owner = %s, epoch = epoch + 1, expires_at = now() + make_interval(secs => %s)
    WHERE shard = %s AND (owner IS NULL OR expires_at < clock_timestamp())
    RETURNING epoch"""

RENEW = """UPDATE shard_leases SET expires_at = now() + make_interval(secs => %s)
    WHERE shard = %s AND epoch = %s AND owner = %s AND expires_at > clock_timestamp()
    RETURNING shard"""

RELEASE = """UPDATE shard_leases SET expires_at = clock_timestamp() - interval '1 second'
    WHERE shard = %s AND epoch = %s AND owner = %s"""

FENCE = (
    "SELECT 1 FROM shard_leases WHERE shard = ? AND owner = ? AND epoch = ?"
    " AND expires_at > clock_timestamp() FOR SHARE"
)
"""Run by the store, in its write transaction, through its connection adapter (``?`` marks)."""


class Executes(Protocol):
    """The store's connection adapter, as far as the fence needs it."""

    def execute(self, sql: str, params: Sequence[Any], /) -> Iterable[Any]: ...


def _third(settings: LeaseSettings) -> float:
    return settings.ttl / 3


@attrs.frozen
class LeaseSettings:
    """How long leases last and how fast shards move."""

    ttl: float = 9.0
    """Seconds a grant or a renewal holds a shard, on PostgreSQL's clock; a round every third."""
    margin: float = attrs.field(default=attrs.Factory(lambda self: self.ttl / 6, takes_self=True))
    """Seconds before a lease could run out at which this node stops writing on its own."""
    node_ttl: float = attrs.field(default=attrs.Factory(lambda self: self.ttl, takes_self=True))
    """Seconds a node counts as live after its last heartbeat."""
    drain_timeout: float = attrs.field(default=attrs.Factory(_third, takes_self=True))
    """Seconds a handover waits, in one round, for the shard's turns to end."""
    drain_rounds: int = 6
    """Rounds a handover waits for them at the most (about two TTLs) before releasing the
    shard anyway; the shard is renewed meanwhile, its turns go on, new ones wait."""
    max_moves: int = 8
    """Shards this node hands over in one round at the most."""

    def __attrs_post_init__(self) -> None:
        if not self.ttl > 0:
            raise ValueError(f"the lease ttl must be positive, got {self.ttl}")
        if not 0 < self.margin <= self.ttl / 3:
            raise ValueError(f"margin must be above 0 and at most ttl/3, got {self.margin}")
        if not self.node_ttl >= 2 * self.interval:
            raise ValueError(f"node_ttl must cover two rounds (2*ttl/3), got {self.node_ttl}")
        # A renewal at the start of the round keeps the shard valid for ttl - margin
        # >= 2*ttl/3, so a drain bounded by ttl/3 ends while the shard is still ours.
        if not 0 < self.drain_timeout <= self.interval:
            raise ValueError(
                f"drain_timeout must be above 0 and at most ttl/3, got {self.drain_timeout}"
            )
        if self.max_moves < 1:
            raise ValueError(f"max_moves must be at least 1, got {self.max_moves}")
        if self.drain_rounds < 1:
            raise ValueError(f"drain_rounds must be at least 1, got {self.drain_rounds}")

    @property
    def interval(self) -> float:
        """Seconds between the starts of two rounds."""
        return self.ttl / 3


@attrs.frozen
class LeaseStatistics:
    """What a keeper has done since it was made."""

    rounds: int
    failed_rounds: int
    grants: int
    renewals: int
    releases: int
    lost: int
    """Shards dropped without a handover: renewal refused, validity run out, fence refusal."""
    fenced_rejections: int
    """Writes refused, by this node's own reckoning or by the lease row."""
    fenced_by_database: int
    """Of those, the ones this node thought it could make but the lease row refused."""
    held: int


@attrs.frozen
class _Holding:
    epoch: int
    valid_until: float
    """``time.monotonic()`` past which this node no longer writes in the shard."""


@attrs.frozen
class _View:
    live: tuple[NodeId, ...]
    leases: dict[int, Lease]


Acquired = Callable[[int, int], Awaitable[None]]
"""``on_acquired(shard, epoch)``: awaited before any write in the shard is allowed."""
Lost = Callable[[int], None]
"""``on_lost(shard)``: stop the shard's chats at once; their writes are refused already."""
Drain = Callable[[int], Awaitable[None]]
"""``drain(shard)``: start nothing new in the shard and return when its turns have ended."""


async def _nothing_to_drain(shard: int) -> None:
    """No turns to wait for."""


async def _nothing_acquired(shard: int, epoch: int) -> None:
    """Nothing to prepare."""


class LeaseKeeper:
    """Holds this node's shards in PostgreSQL and fences its writes.

    Run :meth:`run` in a nursery for as long as the node serves; give the
    store :meth:`fence`. Cancelling :meth:`run` releases nothing: the leases
    run out by themselves, and :meth:`fence` refuses every write once they
    do by this node's reckoning.
    """

    def __init__(
        self,
        url: str,
        me: NodeId,
        settings: LeaseSettings | None = None,
        *,
        on_acquired: Acquired = _nothing_acquired,
        on_lost: Lost | None = None,
        drain: Drain = _nothing_to_drain,
        address: str | None = None,
    ) -> None:
        parts = parse_node_id(me)
        self.url = url
        self.me = me
        self.settings = settings or LeaseSettings()
        self.address = address or f"{parts.host}:{parts.port}"
        self._on_acquired = on_acquired
        self._on_lost = on_lost
        self._drain = drain
        self._limiter = trio.CapacityLimiter(1)
        self._conn: psycopg.Connection[tuple[Any, ...]] | None = None
        # Replaced or changed only on the trio side; the store's thread reads it in fence(),
        # one dict lookup of an immutable value.
        self._holdings: dict[int, _Holding] = {}
        self._owners: dict[int, NodeId] = {}
        self._token: trio.lowlevel.TrioToken | None = None
        self._registered = False
        self._quiet = False
        """The last round failed: the next one takes no new shard (see :meth:`_round`)."""
        self._draining: dict[int, int] = {}
        """Shards being handed over whose turns still ran: the rounds they were drained."""
        self._fence_lock = threading.Lock()
        self._rounds = self._failed = self._grants = self._renewals = 0
        self._releases = self._lost = self._fenced = self._fenced_db = 0

    # -- what the node asks ---------------------------------------------------------------

    def held(self) -> dict[int, int]:
        """The shards this node may write in now, with their epochs."""
        now = time.monotonic()
        return {s: h.epoch for s, h in self._holdings.items() if now < h.valid_until}

    def owner_of(self, chat_id: str) -> NodeId | None:
        """The node that holds the chat's shard as of the last round (None: nobody, now)."""
        shard = shard_of(chat_id)
        holding = self._holdings.get(shard)
        if holding is not None and time.monotonic() < holding.valid_until:
            return self.me
        owner = self._owners.get(shard)
        return None if owner == self.me else owner

    def statistics(self) -> LeaseStatistics:
        """A snapshot of the counters since this keeper was made."""
        return LeaseStatistics(
            rounds=self._rounds,
            failed_rounds=self._failed,
            grants=self._grants,
            renewals=self._renewals,
            releases=self._releases,
            lost=self._lost,
            fenced_rejections=self._fenced,
            fenced_by_database=self._fenced_db,
            held=len(self.held()),
        )

    def fence(self, conn: object, chat_id: str) -> None:
        """Refuse the write unless this node holds the chat's shard; called by the store.

        Runs on the store's thread inside its write transaction. First this
        node's own reckoning (no query once the lease may be running out),
        then the lease row, locked ``FOR SHARE`` until the write commits: a
        grant of the shard to another node waits for the write, so every
        write of an epoch is committed before the next epoch starts.
        """
        shard = shard_of(chat_id)
        holding = self._holdings.get(shard)
        if holding is None or time.monotonic() >= holding.valid_until:
            self._refused(by_database=False)
            raise Fenced(chat_id)
        rows = cast(Executes, conn).execute(FENCE, (shard, self.me, holding.epoch))
        if next(iter(rows), None) is None:
            self._refused(by_database=True)
            token = self._token
            if token is not None:
                try:
                    token.run_sync_soon(self._fence_refused, shard, holding.epoch)
                except trio.RunFinishedError:
                    pass
            raise Fenced(chat_id)

    def _refused(self, *, by_database: bool) -> None:
        with self._fence_lock:
            self._fenced += 1
            self._fenced_db += by_database

    def _fence_refused(self, shard: int, epoch: int) -> None:
        holding = self._holdings.get(shard)
        if holding is not None and holding.epoch == epoch:
            self._drop(shard, released=False)

    # -- the rounds -----------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Keep the leases until cancelled; ``started`` once this node has registered."""
        self._token = trio.lowlevel.current_trio_token()
        interval = self.settings.interval
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._watch_validity)
                backoff = 0.0
                started = False
                while True:
                    began = time.monotonic()
                    try:
                        await self._round()
                    except psycopg.Error as exc:
                        self._failed += 1
                        self._quiet = True
                        log.warning("lease round of %s failed: %s", self.me, exc)
                        await self._db(self._disconnect)
                        # Bounded backoff: soon enough to take the shards back as soon as
                        # the database is, never more often than a few times a round.
                        backoff = min(interval, max(interval / 8, backoff * 2))
                        delay = backoff
                    else:
                        backoff = 0.0
                        delay = interval - (time.monotonic() - began)
                        if not started:
                            started = True
                            task_status.started()
                    await trio.sleep(max(0.0, delay))
        finally:
            with trio.CancelScope(shield=True):
                await self._db(self._disconnect)

    async def _round(self) -> None:
        view = await self._db(self._read)
        self._rounds += 1
        self._owners = {
            s: lease.owner
            for s, lease in view.leases.items()
            if lease.owner is not None and not lease.expired
        }
        if not self._registered:
            # The first round only announces this node: nodes started together then see
            # each other before any takes a shard, instead of the first taking them all
            # and handing most of them over a few at a time.
            self._registered = True
            return
        plan = plan_round(view.leases, view.live, self.me, self.settings.max_moves)

        # Renew what this node holds and the table agrees it holds; the rest is lost.
        mine = set(plan.renew)
        agreed = {
            s: h.epoch
            for s, h in self._holdings.items()
            if s in mine and view.leases[s].epoch == h.epoch
        }
        for shard in [s for s in self._holdings if s not in agreed]:
            self._drop(shard, released=False)
        if agreed:
            renewed = await self._db(self._renew, agreed)
            for shard, epoch in agreed.items():
                holding = self._holdings.get(shard)
                if holding is None or holding.epoch != epoch:
                    continue  # dropped while the renewal was on its way
                if shard in renewed:
                    self._holdings[shard] = _Holding(epoch, self._valid_until(renewed[shard]))
                    self._renewals += 1
                else:
                    self._drop(shard, released=False)

        # After the database was away, every node's heartbeat is stale: a node whose
        # first round back took every free shard would hand most of them on a few a
        # round. So that round only renews and heartbeats; the next, with the others'
        # heartbeats fresh again, takes this node's share.
        quiet, self._quiet = self._quiet, False
        if plan.acquire and not quiet:
            granted = await self._db(self._grant, plan.acquire)
            for shard, (epoch, sent_at) in sorted(granted.items()):
                self._grants += 1
                try:
                    await self._on_acquired(shard, epoch)
                except Exception:
                    # Not held, then: the grant runs out unused and is made again later.
                    log.exception("on_acquired(%s, %s) of %s failed", shard, epoch, self.me)
                    continue
                self._holdings[shard] = _Holding(epoch, self._valid_until(sent_at))
                self._owners[shard] = self.me

        releasing = [s for s in plan.release if s in self._holdings]
        for shard in [s for s in self._draining if s not in releasing]:
            # Being handed over, but its new owner is gone: this node keeps it, and
            # takes its chats up again as after a grant.
            del self._draining[shard]
            holding = self._holdings.get(shard)
            if holding is not None:
                try:
                    await self._on_acquired(shard, holding.epoch)
                except Exception:
                    log.exception("on_acquired(%s) again of %s failed", shard, self.me)
        if releasing:
            await self._hand_over(releasing)

    def _valid_until(self, sent_at: float) -> float:
        """Until when a lease granted or renewed by a statement sent at ``sent_at`` is ours."""
        return sent_at + self.settings.ttl - self.settings.margin

    async def _hand_over(self, shards: list[int], *, at_once: bool = False) -> None:
        """Drain the shards (together, bounded), then let them go for their new owners.

        A shard whose turns are still running when the bound is up is kept,
        and renewed, for another round, so that a beat longer than the bound
        is not cut: it is drained again next round, and released regardless
        after ``drain_rounds`` rounds (or at once when this node leaves).
        """
        drained: set[int] = set()

        async def drain(shard: int) -> None:
            await self._drain_one(shard)
            drained.add(shard)

        with trio.move_on_after(self.settings.drain_timeout):
            async with trio.open_nursery() as nursery:
                for shard in shards:
                    nursery.start_soon(drain, shard)
        gone: dict[int, int] = {}
        for shard in shards:
            holding = self._holdings.get(shard)
            if holding is None:
                continue
            rounds = self._draining.get(shard, 0) + 1
            if shard not in drained and not at_once and rounds < self.settings.drain_rounds:
                self._draining[shard] = rounds  # its turns still run: hand it over later
                continue
            if shard not in drained:
                log.warning("%s: shard %d not drained in time; released anyway", self.me, shard)
            gone[shard] = holding.epoch
            self._drop(shard, released=True)
        if gone:
            try:
                await self._db(self._release, gone)
            except psycopg.Error as exc:
                # Dropped here already: the leases run out by themselves instead.
                log.warning("%s could not release shards %s: %s", self.me, sorted(gone), exc)

    async def _drain_one(self, shard: int) -> None:
        try:
            await self._drain(shard)
        except Exception:
            log.exception("drain(%s) of %s failed; the shard is released anyway", shard, self.me)

    async def leave(self) -> None:
        """Hand over every shard at once and say this node is gone; after :meth:`run` ended.

        The shards are drained (together, within ``drain_timeout``) and
        released, and the node's row deleted, so the other nodes take the
        shards in their next round instead of a lease later.
        """
        shards = sorted(self._holdings)
        if shards:
            await self._hand_over(shards, at_once=True)
        try:
            await self._db(self._forget_me)
        except psycopg.Error as exc:
            log.warning("%s could not unregister: %s", self.me, exc)
        finally:
            await self._db(self._disconnect)

    def _drop(self, shard: int, *, released: bool) -> None:
        """Stop holding the shard here at once; the node hears of it through ``on_lost``."""
        del self._holdings[shard]
        self._owners.pop(shard, None)
        self._draining.pop(shard, None)
        if released:
            self._releases += 1
        else:
            self._lost += 1
        if self._on_lost is not None:
            try:
                self._on_lost(shard)
            except Exception:
                log.exception("on_lost(%s) of %s failed", shard, self.me)

    async def _watch_validity(self) -> None:
        """Drop each shard as its validity runs out, even while a round hangs on the database."""
        while True:
            now = time.monotonic()
            for shard in [s for s, h in self._holdings.items() if h.valid_until <= now]:
                self._drop(shard, released=False)
            soonest = min(
                (h.valid_until for h in self._holdings.values()),
                default=now + self.settings.interval,
            )
            await trio.sleep(max(min(soonest - now, self.settings.interval), 0.001))

    # -- the database side (worker thread) ------------------------------------------------

    async def _db(self, fn: Callable[..., T], *args: Any) -> T:
        return await trio.to_thread.run_sync(fn, *args, limiter=self._limiter)

    def _connection(self) -> psycopg.Connection[tuple[Any, ...]]:
        if self._conn is None:
            ttl_ms = int(self.settings.ttl * 1000)
            conn = psycopg.connect(
                self.url,
                autocommit=True,
                connect_timeout=max(2, int(self.settings.interval) + 1),
                application_name=f"troupe-leases {self.me}",
                # A statement stuck behind a lock or a slow server ends within a lease,
                # and so does one sent into a network that no longer answers.
                options=f"-c statement_timeout={ttl_ms}",
                tcp_user_timeout=ttl_ms,
                keepalives=1,
                keepalives_idle=max(1, int(self.settings.interval)),
                keepalives_interval=1,
                keepalives_count=3,
            )
            try:
                with conn.transaction():
                    conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
                    for statement in SCHEMA:
                        conn.execute(statement)
                    conn.execute(SEED, (SHARDS,))
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    def _disconnect(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            conn.close()

    def _read(self) -> _View:
        conn = self._connection()
        with conn.transaction():
            if not self._registered:
                conn.execute(FORGET_SILENT, (self.settings.node_ttl * SILENT_FOR,))
            conn.execute(HEARTBEAT, (self.me, self.address))
            found = conn.execute(LIVE_NODES, (self.settings.node_ttl,)).fetchall()
            live = tuple(NodeId(row[0]) for row in found)
            rows = conn.execute(READ_LEASES).fetchall()
        leases = {
            int(shard): Lease(NodeId(owner) if owner is not None else None, int(epoch), expired)
            for shard, owner, epoch, expired in rows
        }
        return _View(live, leases)

    def _renew(self, held: dict[int, int]) -> dict[int, float]:
        """Each shard renewed, with the monotonic time just before its renewal was sent."""
        conn = self._connection()
        renewed: dict[int, float] = {}
        for shard, epoch in held.items():
            sent_at = time.monotonic()  # before sending: the lease runs from a later instant
            if conn.execute(RENEW, (self.settings.ttl, shard, epoch, self.me)).fetchone():
                renewed[shard] = sent_at
        return renewed

    def _grant(self, shards: Sequence[int]) -> dict[int, tuple[int, float]]:
        """Each shard granted, with its epoch and the time just before its grant was sent."""
        conn = self._connection()
        granted: dict[int, tuple[int, float]] = {}
        for shard in shards:
            sent_at = time.monotonic()
            row = conn.execute(GRANT, (self.me, self.settings.ttl, shard)).fetchone()
            if row is not None:
                granted[shard] = (int(row[0]), sent_at)
        return granted

    def _release(self, gone: dict[int, int]) -> None:
        conn = self._connection()
        for shard, epoch in gone.items():
            conn.execute(RELEASE, (shard, epoch, self.me))

    def _forget_me(self) -> None:
        self._connection().execute(FORGET_NODE, (self.me,))
