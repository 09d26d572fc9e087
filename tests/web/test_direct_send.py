"""A watch that sends a token itself: stopping it never cuts a frame in half.

A fake socket stands in for a client whose receive window is full: its send
waits until the test lets it finish, as a real one waits for the peer to read.
"""

from __future__ import annotations

from typing import cast

import trio
import trio.testing
from trio_websocket import WebSocketConnection

import protocol
from actors import Engine
from web._connection import Connection
from web._settings import GatewaySettings
from web._wire import token_frame


class StuckSocket:
    """Sends that finish only when ``release`` is set; what finished, in order."""

    def __init__(self) -> None:
        self.release = trio.Event()
        self.sent: list[str] = []

    async def send_message(self, message: str) -> None:
        await self.release.wait()
        self.sent.append(message)


def connection(ws: StuckSocket) -> Connection:
    settings = GatewaySettings(token="t", port=0)
    # Neither the engine nor the gateway's figures are asked for by a send.
    return Connection(
        cast(WebSocketConnection, ws), cast(Engine, None), settings, lambda: cast(object, None)
    )


FRAME = token_frame(protocol.Token("c1", 7, "mira", 0, "Mira"))


async def test_a_watch_stopped_mid_send_stops_once_its_frame_is_out() -> None:
    ws = StuckSocket()
    conn = connection(ws)
    with trio.CancelScope() as watch:
        async with trio.open_nursery() as nursery:
            assert conn.outbox.claim()
            nursery.start_soon(conn._send_now, FRAME, watch)
            await trio.testing.wait_all_tasks_blocked()
            conn._stop_watch(watch)  # the client closed the chat meanwhile
            await trio.testing.wait_all_tasks_blocked()
            assert not watch.cancel_called and ws.sent == []  # the frame is not cut short
            ws.release.set()
        await trio.sleep_forever()  # the watch's next step: waiting on its chat's feed
    assert watch.cancelled_caught  # the watch stopped, right after the frame went out
    assert ws.sent == [FRAME.text] and conn.sent == 1
    assert len(conn.outbox) == 0 and conn.outbox.claim()  # nothing left on its way


async def test_stopping_a_watch_that_is_not_sending_cancels_it_at_once() -> None:
    conn = connection(StuckSocket())
    with trio.CancelScope() as watch:
        conn._stop_watch(watch)
        assert watch.cancel_called
        await trio.sleep_forever()
    assert watch.cancelled_caught
