"""The gateway: HTTP and WebSocket on one port, in front of the engine.

Each accepted socket gets its request head read here. Plain requests are
answered by :mod:`web._http`, those under ``/api/`` by :mod:`web._api`; an
upgrade to ``/ws`` is checked (token, Origin, the handshake itself, then the
cap on clients) and handed to trio-websocket, and the connection is served by a
:class:`~web._connection.Connection` until either side closes it. Every
socket is counted while it is open, so the gateway answers 503 rather than
run out of file descriptors.
"""

from __future__ import annotations

import hmac
import logging
from collections import Counter

import trio
import trio_websocket
from trio_websocket import ConnectionClosed

import protocol as p
from actors import Engine

from ._api import Api
from ._connection import Connection
from ._handshake import Refusal, check_handshake
from ._http import HEAD_TIMEOUT, BadRequest, Replay, Request, answer, read_request, render
from ._route import Router
from ._settings import GatewaySettings
from ._statistics import GatewayStatistics

log = logging.getLogger("troupe.web")

# How long the chats' watches must stay quiet before closing counts everything
# they had to forward as sent (see Gateway.close).
_QUIET = 0.05


class Gateway:
    """Accepts connections and serves them until :meth:`shutdown`.

    Run it with :meth:`run` (or :func:`serve_gateway`) in a nursery. To stop
    without losing what the engine still has to say: :meth:`stop_accepting`,
    then ``engine.shutdown()`` (beats in flight are committed as truncated and
    their ``beat_complete`` goes out), then :meth:`close`. :meth:`shutdown`
    does the first and the last step.
    """

    def __init__(
        self, engine: Engine, settings: GatewaySettings, router: Router | None = None
    ) -> None:
        self.engine = engine
        self.router = router
        """Runs commands on their chat's owner, in a cluster (``web._route``)."""
        self.settings = settings
        self.connections: set[Connection] = set()
        self.accepted = 0
        self.refused: Counter[int] = Counter()
        self.clients = 0
        """WebSocket connections open or in their handshake."""
        self.pending = 0
        """Sockets still being routed: reading a head, or answering a plain request."""
        self._refusing = 0  # sockets being answered 503 unread
        self._accepting = trio.CancelScope()
        self._listeners: list[trio.SocketListener] = []
        self.api = Api(engine, settings.token, self._origins, self.broadcast)

    def broadcast(self, message: p.ServerMessage) -> None:
        """Tell every open client of something new, e.g. a bot an import made.

        Queued at once, past a full outbox if need be: it is rare and small.
        """
        frame = p.to_wire(message)
        for connection in self.connections:
            connection.outbox.put_nowait(frame)

    def statistics(self) -> GatewayStatistics:
        """Open connections (each with its send queue depth), refusals, the engine's figures."""
        return GatewayStatistics(
            connections=len(self.connections),
            clients=self.clients,
            max_clients=self.settings.max_clients,
            pending=self.pending,
            accepted=self.accepted,
            refused={str(status): n for status, n in sorted(self.refused.items())},
            per_connection=tuple(
                c.statistics() for c in sorted(self.connections, key=lambda c: c.number)
            ),
            engine=self.engine.statistics(),
        )

    async def run(
        self,
        listeners: list[trio.SocketListener] | None = None,
        *,
        task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Listen and serve until cancelled; reports the bound port when listening.

        ``listeners`` already bound are used (and closed) instead of binding
        ``settings.host`` and ``settings.port``.
        """
        if listeners is None:
            listeners = await trio.open_tcp_listeners(self.settings.port, host=self.settings.host)
        self._listeners = listeners
        port: int = self._listeners[0].socket.getsockname()[1]
        log.info("listening on %s:%d", self.settings.host, port)
        try:
            async with trio.open_nursery() as handlers:
                with self._accepting:
                    task_status.started(port)
                    await trio.serve_listeners(
                        self._handle, self._listeners, handler_nursery=handlers
                    )
                await self._close_listeners()  # refused from now on, not left waiting
                await trio.sleep_forever()  # the open connections go on until closed
        finally:
            await self._close_listeners()

    def stop_accepting(self) -> None:
        """Take no new connections; the open ones go on."""
        self._accepting.cancel()

    async def close(self) -> None:
        """Send every connection what is queued for it, then close it with 1001 (going away).

        Bounded by ``settings.close_timeout``: a client that does not read or
        answer the close by then is dropped.
        """
        with trio.CancelScope(shield=True):
            with trio.move_on_after(self.settings.close_timeout):
                async with trio.open_nursery() as nursery:
                    for connection in list(self.connections):
                        nursery.start_soon(self._close_one, connection)
            for connection in list(self.connections):
                connection.scope.cancel()  # out of time: drop it

    async def _close_one(self, connection: Connection) -> None:
        # Messages the engine published just before (a beat_complete of a shutdown)
        # are still on their way through the watch; wait until it stays quiet.
        outbox = connection.outbox
        while not outbox.closed:
            await outbox.drained()
            moved = outbox.moved
            await trio.sleep(_QUIET)
            if outbox.moved == moved and not len(outbox):
                break
        await connection.close(1001, "the server is shutting down", self.settings.close_timeout)

    async def shutdown(self) -> None:
        """Stop accepting and close every connection with 1001 (the engine is the caller's)."""
        self.stop_accepting()
        await self.close()

    async def _close_listeners(self) -> None:
        with trio.CancelScope(shield=True):
            for listener in self._listeners:
                await listener.aclose()

    # --- one socket ---

    async def _handle(self, stream: trio.SocketStream) -> None:
        if self.pending >= self.settings.max_pending:
            # Not even read: every socket holds a file descriptor until it closes.
            self.refused[503] += 1
            if self._refusing >= self.settings.max_pending:
                await _close(stream)  # a flood: no answer, the file back at once
                return
            self._refusing += 1
            try:
                await _send_unread(stream, render(None, 503, _BUSY))
            finally:
                self._refusing -= 1
            return
        self.pending += 1
        try:
            admitted = await self._route(stream)
        except Exception:
            # Our bug, in one socket's handling: the others and the gateway go on.
            log.exception("handling a request failed")
            await _close(stream)
            return
        finally:
            self.pending -= 1
        if admitted is None:
            return
        try:
            await self._serve_websocket(admitted)
        except Exception:
            # A bug here or in trio-websocket: this client is dropped, the rest go on.
            log.exception("a WebSocket connection failed")
        finally:
            self.clients -= 1
            await _close(stream)

    async def _route(self, stream: trio.SocketStream) -> Replay | None:
        """Answer a plain request or refuse an upgrade; an admitted upgrade's stream."""
        try:
            got = await read_request(stream)
        except BadRequest as exc:
            await _send_and_close(stream, render(None, exc.status, f"{exc}\n".encode()))
            return None
        except (trio.TooSlowError, trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            await _close(stream)
            return None
        if got is None:
            await _close(stream)
            return None
        request, raw = got
        if request.path.startswith("/api/") and not request.is_websocket:
            response, unread = await self.api.answer(request, stream)
            if unread:
                await _send_unread(stream, response)
            else:
                await _send_and_close(stream, response)
            return None
        if not request.is_websocket:
            await _send_and_close(stream, await answer(request, self.settings.static_dir))
            return None
        refusal = self._refusal(request)
        if refusal is not None:
            self.refused[refusal.status] += 1
            log.debug("refused a WebSocket upgrade with %d: %s", refusal.status, refusal.message)
            body = f"{refusal.message}\n".encode()
            await _send_and_close(
                stream, render(request, refusal.status, body, extra=refusal.headers)
            )
            return None
        # Counted from here, before the handshake's first await, so that a burst of
        # upgrades cannot all slip under the cap together.
        self.clients += 1
        return Replay(stream, raw)

    def _refusal(self, request: Request) -> Refusal | None:
        if request.path != "/ws":
            return Refusal(404, "not found")
        token = (request.query.get("token") or [""])[0]
        if not hmac.compare_digest(token.encode(), self.settings.token.encode()):
            return Refusal(401, "a valid token is needed: /ws?token=...")
        origin = request.headers.get("origin")
        if origin is not None and origin.lower() not in self._origins(request):
            return Refusal(403, "pages from this origin may not connect")
        refusal = check_handshake(request)
        if refusal is not None:
            return refusal
        if self.clients >= self.settings.max_clients:
            return Refusal(
                503,
                f"the server has {self.clients} connections, its most; try again later",
                (("Retry-After", "5"),),
            )
        return None

    def _origins(self, request: Request) -> set[str]:
        host = request.headers.get("host", "").lower()
        own = {f"http://{host}", f"https://{host}"} if host else set()
        return own | {origin.lower().rstrip("/") for origin in self.settings.allow_origins}

    async def _serve_websocket(self, stream: Replay) -> None:
        async with trio.open_nursery() as nursery:
            ws = None
            # The head was checked, so the handshake completes unless the client
            # vanishes or stalls; the bound covers a stall.
            with trio.move_on_after(HEAD_TIMEOUT):
                try:
                    request = await trio_websocket.wrap_server_stream(
                        nursery,
                        stream,
                        message_queue_size=4,
                        max_message_size=self.settings.hard_frame_limit,
                    )
                    ws = await request.accept()
                except (
                    ConnectionClosed,
                    trio.BrokenResourceError,
                    trio.ClosedResourceError,
                    OSError,
                ):
                    pass
            if ws is None:
                nursery.cancel_scope.cancel()
                return
            connection = Connection(ws, self.engine, self.settings, self.statistics, self.router)
            self.accepted += 1
            self.connections.add(connection)
            try:
                await connection.serve()
            except Exception:
                log.exception("%r failed", connection)
            finally:
                self.connections.discard(connection)
                bound = self.settings.close_timeout
                with trio.CancelScope(shield=True), trio.move_on_after(bound):
                    await ws.aclose()
                # Only trio-websocket's reader is left in the nursery. It may still
                # be reading the client's answer to our close, which is what lets a
                # close end at once with its code: cancelling it now would leave
                # `Connection.close` waiting out its bound. It ends by itself once
                # the socket closes; the deadline is for a client that never answers.
                nursery.cancel_scope.deadline = min(
                    nursery.cancel_scope.deadline, trio.current_time() + bound
                )


_LINGER = 1.0
"""Seconds a refused socket's late bytes are read and dropped before it closes."""

_BUSY = b"the server has too many requests at once; try again shortly\n"


async def _send_and_close(stream: trio.abc.Stream, data: bytes) -> None:
    try:
        await stream.send_all(data)
    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
        pass
    await _close(stream)


async def _send_unread(stream: trio.SocketStream, data: bytes) -> None:
    """Answer without reading the request, then close so that the answer arrives.

    Closing a socket with unread bytes resets it, and the reset can overtake
    the answer; so stop writing, and drop what the client sends for a moment.
    """
    with trio.move_on_after(_LINGER):
        try:
            await stream.send_all(data)
            await stream.send_eof()
            for _ in range(16):
                if not await stream.receive_some(65536):
                    break
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass
    await _close(stream)


async def _close(stream: trio.abc.Stream) -> None:
    with trio.CancelScope(shield=True), trio.move_on_after(1):
        try:
            await stream.aclose()
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass


async def serve_gateway(
    engine: Engine,
    settings: GatewaySettings,
    *,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the gateway until cancelled; ``task_status.started`` gets the bound port.

    For a graceful stop keep the :class:`Gateway` instead and call its
    :meth:`Gateway.shutdown`.
    """
    await Gateway(engine, settings).run(task_status=task_status)
