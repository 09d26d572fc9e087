"""The gateway: HTTP and WebSocket on one port, in front of the engine."""

from __future__ import annotations

import hmac
import logging
from pathlib import Path
from typing import Any

import attrs
import trio
import trio_websocket
from trio_websocket import ConnectionClosed

from actors import Engine

from ._connection import Connection
from ._http import BadRequest, Replay, Request, answer, read_head, response

log = logging.getLogger("troupe.web")

STATIC_DIR = Path(__file__).parent / "static"


@attrs.frozen
class GatewaySettings:
    """Where to listen, who may connect, and how fast."""

    token: str = attrs.field(repr=False)
    host: str = "127.0.0.1"
    port: int = 8765
    allow_origins: tuple[str, ...] = ()
    static_dir: Path = STATIC_DIR
    rate: float = 20.0
    """Messages a second a connection may send, on average."""
    burst: int = 40


class Gateway:
    """Accepts connections and serves them; ``close()`` ends them all with 1001."""

    def __init__(self, engine: Engine, settings: GatewaySettings) -> None:
        self.engine = engine
        self.settings = settings
        self.connections: set[Connection] = set()
        self.accepted = 0
        self.refused = 0
        self._accepting = trio.CancelScope()

    def statistics(self) -> dict[str, Any]:
        """Connections now and so far, and the engine's figures."""
        return {
            "connections": len(self.connections),
            "accepted": self.accepted,
            "refused": self.refused,
            "per_connection": [
                {"watching": sorted(c.watches), "sent": c.sent, "received": c.received}
                for c in self.connections
            ],
            "engine": self.engine.statistics(),
        }

    async def run(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        """Listen and serve until cancelled."""
        listeners = await trio.open_tcp_listeners(self.settings.port, host=self.settings.host)
        port = listeners[0].socket.getsockname()[1]
        try:
            async with trio.open_nursery() as connections:
                with self._accepting:
                    task_status.started(port)
                    await trio.serve_listeners(
                        self._handle, listeners, handler_nursery=connections
                    )
                await trio.sleep_forever()  # no new connections; the open ones go on
        finally:
            with trio.CancelScope(shield=True):
                for listener in listeners:
                    await listener.aclose()
                await self.close()

    def stop_accepting(self) -> None:
        """Stop taking new connections; those already open go on."""
        self._accepting.cancel()

    async def close(self) -> None:
        """Close every WebSocket with 1001 (going away), within a bound."""
        with trio.move_on_after(5):
            for connection in list(self.connections):
                try:
                    await connection.ws.aclose(1001, "the server is shutting down")
                except Exception:
                    pass

    async def _handle(self, stream: trio.SocketStream) -> None:
        try:
            request, data = await read_head(stream)
        except (BadRequest, trio.TooSlowError, trio.BrokenResourceError, OSError):
            await _close(stream)
            return
        if not request.is_websocket:
            try:
                await stream.send_all(answer(request, self.settings.static_dir))
            except (trio.BrokenResourceError, OSError):
                pass
            await _close(stream)
            return
        if request.path != "/ws":
            await _send_and_close(stream, response(404, "Not Found", b"not found\n"))
            return
        refusal = self._refusal(request)
        if refusal is not None:
            self.refused += 1
            await _send_and_close(stream, refusal)
            return
        await self._serve_websocket(Replay(stream, data))

    def _refusal(self, request: Request) -> bytes | None:
        token = (request.query.get("token") or [""])[0]
        if not hmac.compare_digest(token.encode(), self.settings.token.encode()):
            return response(401, "Unauthorized", b"a valid token is needed\n")
        origin = request.headers.get("origin")
        if origin is not None:
            host = request.headers.get("host", "")
            own = {f"http://{host}", f"https://{host}"}
            if origin not in own and origin not in self.settings.allow_origins:
                return response(403, "Forbidden", b"this origin may not connect\n")
        return None

    async def _serve_websocket(self, stream: trio.abc.Stream) -> None:
        async with trio.open_nursery() as nursery:
            try:
                request = await trio_websocket.wrap_server_stream(
                    nursery, stream, message_queue_size=16, max_message_size=1024 * 1024
                )
                ws = await request.accept()
            except (ConnectionClosed, trio.BrokenResourceError, OSError):
                nursery.cancel_scope.cancel()
                return
            connection = Connection(
                ws, self.engine, self.statistics, self.settings.rate, self.settings.burst
            )
            self.accepted += 1
            self.connections.add(connection)
            try:
                await connection.serve()
            except ConnectionClosed:
                pass
            except Exception:
                log.exception("a connection failed")
            finally:
                self.connections.discard(connection)
                with trio.CancelScope(shield=True), trio.move_on_after(2):
                    await ws.aclose()
                nursery.cancel_scope.cancel()


async def _send_and_close(stream: trio.abc.Stream, data: bytes) -> None:
    try:
        await stream.send_all(data)
    except (trio.BrokenResourceError, OSError):
        pass
    await _close(stream)


async def _close(stream: trio.abc.Stream) -> None:
    with trio.CancelScope(shield=True), trio.move_on_after(1):
        try:
            await stream.aclose()
        except (trio.BrokenResourceError, OSError):
            pass


async def serve_gateway(
    engine: Engine,
    settings: GatewaySettings,
    *,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the gateway until cancelled; reports the bound port when listening."""
    await Gateway(engine, settings).run(task_status=task_status)
