"""One cluster per module: PostgreSQL, Redis, the model and three ``troupe serve`` nodes.

Starting a cluster costs tens of seconds (three processes import the
product, then the first node's shards move to the others a few a round),
so the scenarios of a module share one and each begins with
``await cluster.ensure()``: three live nodes at least, the shards where
they belong. A scenario that kills or pauses a node leaves the cluster for
the next one to mend.

These tests run with ``make test-cluster``, not ``make test`` (pyproject's
``norecursedirs`` keeps this folder out of the default run).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from cluster_kit import MODEL_RATE, MODEL_WORDS, Cluster, open_cluster

from tests.support.servers import PostgresServer, postgres_server


@pytest.fixture(scope="session")
def pg() -> Iterator[PostgresServer]:
    with postgres_server() as server:
        yield server


@pytest.fixture(scope="module")
def cluster(pg: PostgresServer, request: pytest.FixtureRequest) -> Iterator[Cluster]:
    name = f"cluster_{request.module.__name__.rsplit('.', 1)[-1]}"
    with (
        tempfile.TemporaryDirectory(prefix="troupe-cluster-") as folder,
        open_cluster(pg, Path(folder), name, MODEL_RATE, MODEL_WORDS) as running,
    ):
        running.start_nodes(3)
        running.wait_balanced()
        yield running
        # The last scenario's faults too: no node may have gone down on its own.
        running.assert_none_crashed()
