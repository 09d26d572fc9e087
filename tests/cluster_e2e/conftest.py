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
from cluster_kit import MODEL_RATE, MODEL_WORDS, Cluster, start_model

from tests.support.servers import PostgresServer, postgres_server, redis_server, redis_url


@pytest.fixture(scope="session")
def pg() -> Iterator[PostgresServer]:
    with postgres_server() as server:
        yield server


@pytest.fixture(scope="module")
def cluster(pg: PostgresServer, request: pytest.FixtureRequest) -> Iterator[Cluster]:
    name = f"cluster_{request.module.__name__.rsplit('.', 1)[-1]}"
    with (
        tempfile.TemporaryDirectory(prefix="troupe-cluster-") as folder,
        redis_server() as redis,
    ):
        model, model_url = start_model(Path(folder), MODEL_RATE, MODEL_WORDS)
        running = Cluster(
            folder=Path(folder),
            store=pg.fresh_database(name),
            pg=pg,
            redis=redis,
            bus=redis_url(redis),
            model=model,
            model_url=model_url,
        )
        try:
            running.start_nodes(3)
            running.wait_balanced()
            yield running
            # The last scenario's faults too: no node may have gone down on its own.
            running.assert_none_crashed()
        except BaseException:
            print(running.tails())
            raise
        finally:
            running.stop()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    """A failed scenario's report carries the end of every node's log."""
    report = yield
    if report.failed:
        running = getattr(item, "funcargs", {}).get("cluster")
        if isinstance(running, Cluster):
            report.sections.append(("node logs", running.tails()))
    return report
