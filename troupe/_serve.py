"""``troupe serve``: the engine and the gateway on one port, until a signal stops them."""

from __future__ import annotations

import argparse
import errno
import logging
import signal
import sys
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from typing import TYPE_CHECKING

import trio

from actors import Engine, open_engine

if TYPE_CHECKING:
    from web import Router

from . import __version__
from ._config import Config, ConfigError, build_config
from ._demo import seed_demo

log = logging.getLogger("troupe")

STOP_WITHIN = 9.0
"""Seconds from SIGTERM to exit: beats committed, connections closed with 1001."""
CLOSE_BUDGET = 2.5
"""Of those, the seconds kept for closing the WebSockets after the engine stopped."""
FILES_WANTED = 65536
"""How far the soft limit on open files is raised when the hard limit allows."""
FILES_RESERVED = 64
"""Open files kept for everything but clients: the database, the model, the listeners."""


class CannotListen(Exception):
    """The port cannot be bound: in use, or not ours to take."""

    def __init__(self, config: Config, error: OSError) -> None:
        if error.errno == errno.EADDRINUSE:
            message = f"port {config.port} is in use; pass --port"
        else:
            message = f"cannot listen on {config.host}:{config.port}: {error.strerror or error}"
        super().__init__(message)


def raise_file_limit() -> int | None:
    """Raise the soft limit on open files toward the hard one; the soft limit now.

    None where the platform has no such limit.
    """
    try:
        import resource
    except ImportError:  # not on this platform
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = FILES_WANTED if hard == resource.RLIM_INFINITY else min(hard, FILES_WANTED)
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return None if soft == resource.RLIM_INFINITY else soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    except (ValueError, OSError):
        return soft
    return wanted


def client_cap(wanted: int, max_pending: int, file_limit: int | None) -> int:
    """How many WebSocket clients fit under the open-file limit, at most ``wanted``."""
    if file_limit is None:
        return wanted
    room = file_limit - max_pending - FILES_RESERVED
    return max(1, min(wanted, room))


async def serve(
    config: Config, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED
) -> None:
    """Run until SIGINT or SIGTERM; then stop accepting, commit beats in flight, close."""
    from web import Gateway, GatewaySettings

    defaults = GatewaySettings(token=config.token)
    file_limit = raise_file_limit()
    max_clients = client_cap(config.max_clients, defaults.max_pending, file_limit)
    if max_clients < config.max_clients:
        log.warning(
            "at most %s files may be open, so at most %d clients are served, not %d",
            file_limit,
            max_clients,
            config.max_clients,
        )
    # Listen before opening anything else: a busy port fails at once, with nothing to undo.
    try:
        listeners = await trio.open_tcp_listeners(config.port, host=config.host)
    except OSError as exc:
        raise CannotListen(config, exc) from None
    bound = listeners[0].socket.getsockname()[1]
    with trio.CancelScope() as everything, _closing(listeners):
        async with _running(config, bound) as (engine, router):
            gateway = Gateway(
                engine,
                GatewaySettings(
                    token=config.token,
                    host=config.host,
                    port=config.port,
                    allow_origins=config.allow_origins,
                    max_clients=max_clients,
                    close_timeout=CLOSE_BUDGET,
                ),
                router,
            )
            with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                async with trio.open_nursery() as nursery:
                    port = await nursery.start(gateway.run, listeners)
                    host = f"[{config.host}]" if ":" in config.host else config.host
                    print(
                        f"troupe {__version__} is ready: http://{host}:{port}/?token={config.token}",
                        flush=True,
                    )
                    task_status.started(port)
                    async for signum in signals:
                        log.info("stopping on %s", signal.Signals(signum).name)
                        break
                    stop_by = trio.current_time() + STOP_WITHIN
                    # Past this, whatever is not shielded is cancelled: the bound holds
                    # even if a step below overruns its own.
                    everything.deadline = stop_by + 0.5
                    with trio.CancelScope(shield=True):
                        gateway.stop_accepting()
                        # Every beat in flight is committed as truncated, and its
                        # beat_complete goes out, before the connections close.
                        with trio.move_on_at(stop_by - CLOSE_BUDGET):
                            await engine.shutdown()
                        with trio.move_on_at(stop_by):
                            await gateway.close()
                    nursery.cancel_scope.cancel()


@asynccontextmanager
async def _running(config: Config, port: int) -> AsyncIterator[tuple[Engine, Router | None]]:
    """The engine on its own, or as one node of a cluster with the router of its commands."""
    version = f"troupe {__version__}"
    if config.cluster is None:
        async with open_engine(config.engine, server_version=version) as engine:
            if await seed_demo(engine):
                log.info("seeded the demo world")
            yield engine, None
        return
    from cluster import NodeSettings, open_node

    settings = NodeSettings(
        store=config.cluster.store,
        bus=config.cluster.bus,
        host=config.host,
        port=port,
        lease_ttl=config.cluster.lease_ttl,
    )
    # No demo world: every node would seed it. A cluster starts empty.
    async with open_node(settings, config.engine, server_version=version) as node:
        yield node.engine, node.router


@contextmanager
def _closing(listeners: list[trio.SocketListener]) -> Iterator[None]:
    """Close the listeners on the way out, also when the gateway never ran."""
    try:
        yield
    finally:
        for listener in listeners:
            listener.socket.close()


def run_serve(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    """The ``serve`` subcommand."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        config = build_config(args, env)
    except ConfigError as exc:
        print(f"troupe serve: {exc}", file=sys.stderr)
        return 2
    try:
        trio.run(serve, config)
    except (CannotListen, OSError) as exc:
        print(f"troupe serve: {exc}", file=sys.stderr)
        return 1
    return 0
