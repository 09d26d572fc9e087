"""The gateway's settings: one object, built by the composition root and passed down."""

from __future__ import annotations

from pathlib import Path

import attrs
from attrs.validators import gt

from protocol import MAX_FRAME_BYTES

STATIC_DIR = Path(__file__).parent / "static"
"""The web client shipped with troupe."""


@attrs.frozen
class GatewaySettings:
    """Where the gateway listens, who may connect, and how much each connection may do.

    The defaults are the protocol's (64 KiB frames) and a rate a person typing
    never reaches but a runaway script soon does.
    """

    token: str = attrs.field(repr=False)
    """The secret every WebSocket must present as ``/ws?token=...``."""
    host: str = "127.0.0.1"
    port: int = 8765
    """0 picks a free port; ``serve_gateway`` reports the one it bound."""
    allow_origins: tuple[str, ...] = ()
    """Browser origins allowed besides the server's own (``http://HOST:PORT``)."""
    static_dir: Path = STATIC_DIR
    max_frame: int = attrs.field(default=MAX_FRAME_BYTES, validator=gt(0))
    """Inbound frames over this many bytes get ``too_large`` and a close with 1009."""
    hard_frame_limit: int = attrs.field(default=16 * MAX_FRAME_BYTES, validator=gt(0))
    """A frame this long is dropped while it arrives (close 1009 with no ``error`` first),
    so a hostile client cannot make the server buffer without bound."""
    rate: float = attrs.field(default=20.0, validator=gt(0))
    """Messages a second a connection may send, on average."""
    burst: int = attrs.field(default=40, validator=gt(0))
    """Messages a connection may send at once after a quiet spell."""
    send_queue: int = attrs.field(default=256, validator=gt(0))
    """Frames waiting to go out on one connection before its producers wait.

    Tokens of one beat merge in the queue, so it rarely fills; when it does,
    the chat's watch stops reading and the engine resyncs it with a fresh
    ``chat_state`` instead of a backlog."""
    close_timeout: float = attrs.field(default=5.0, validator=gt(0))
    """Seconds closing the connections may take on shutdown."""
    max_clients: int = attrs.field(default=512, validator=gt(0))
    """WebSocket connections open at once (handshakes included); past it an
    upgrade is answered 503 at once, so the process never runs out of file
    descriptors and stalls everyone."""
    max_pending: int = attrs.field(default=64, validator=gt(0))
    """Sockets not yet a WebSocket (sending a request head, or fetching a
    page) at once; past it a new socket gets 503 without being read."""
