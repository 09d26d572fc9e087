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


async def serve(
    config: Config, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED
) -> None:
    """Run until SIGINT or SIGTERM; then stop accepting, commit beats in flight, close."""
    from web import Gateway, GatewaySettings

    async with open_engine(config.engine, server_version=f"troupe {__version__}") as engine:
        if await seed_demo(engine):
            log.info("seeded the demo world")
        gateway = Gateway(
            engine,
            GatewaySettings(
                token=config.token,
                host=config.host,
                port=config.port,
                allow_origins=config.allow_origins,
            ),
        )
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async with trio.open_nursery() as nursery:
                port = await nursery.start(gateway.run)
                host = f"[{config.host}]" if ":" in config.host else config.host
                print(
                    f"troupe {__version__} is ready: http://{host}:{port}/?token={config.token}",
                    flush=True,
                )
                task_status.started(port)
                async for signum in signals:
                    log.info("stopping on %s", signal.Signals(signum).name)
                    break
                with trio.CancelScope(shield=True), trio.move_on_after(9):
                    gateway.stop_accepting()
                    await engine.shutdown()  # every beat in flight is committed as truncated
                    await gateway.close()
                nursery.cancel_scope.cancel()


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
    except OSError as exc:
        print(f"troupe serve: {exc}", file=sys.stderr)
        return 1
    return 0
