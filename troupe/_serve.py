"""``troupe serve``: the engine and the gateway on one port, until a signal stops them."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Mapping

import trio

from actors import open_engine

from . import __version__
from ._config import Config, ConfigError, build_config
from ._demo import seed_demo

log = logging.getLogger("troupe")


async def serve(config: Config, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
    """Run until SIGINT or SIGTERM: then stop accepting, commit beats, close, exit."""
    from web import GatewaySettings, serve_gateway

    async with open_engine(config.engine, server_version=f"troupe {__version__}") as engine:
        if await seed_demo(engine):
            log.info("seeded the demo world")
        settings = GatewaySettings(
            host=config.host,
            port=config.port,
            token=config.token,
            allow_origins=config.allow_origins,
        )
        async with trio.open_nursery() as nursery:
            port = await nursery.start(serve_gateway, engine, settings)
            host = config.host if ":" not in config.host else f"[{config.host}]"
            print(f"troupe {__version__} is ready: http://{host}:{port}/?token={config.token}",
                  flush=True)
            task_status.started(port)
            with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                async for signum in signals:
                    log.info("stopping on %s", signal.Signals(signum).name)
                    break
            with trio.move_on_after(10):
                with trio.CancelScope(shield=True):
                    await engine.shutdown()
            nursery.cancel_scope.cancel()


def run_serve(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    """The ``serve`` subcommand."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = build_config(args, env)
    except ConfigError as exc:
        print(f"troupe serve: {exc}", file=sys.stderr)
        return 2
    try:
        trio.run(serve, config)
    except OSError as exc:
        print(f"troupe serve: {exc}", file=sys.stderr)
        return 1
    return 0
