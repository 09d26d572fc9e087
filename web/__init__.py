"""The gateway and the web client.

Owns: the one port that serves the static web client (``web/static/``, plain
HTML, CSS and JavaScript), ``/healthz``, and the WebSocket endpoint ``/ws``
speaking the protocol of docs/protocol.md: the token and Origin checks, the
frame limit, a per-connection rate limit and send queue, and each
connection's watches of chats; in a cluster, handing a command about a chat
to its owner through a router (``_route``). Everything a command does is the
engine's (:mod:`actors`); the gateway only carries it.
"""

from ._gateway import Gateway, serve_gateway
from ._route import Routed, Router, chat_of, run_forwarded
from ._settings import GatewaySettings
from ._statistics import ConnectionStatistics, GatewayStatistics, OutboxStatistics

__all__ = [
    "ConnectionStatistics",
    "Gateway",
    "GatewaySettings",
    "GatewayStatistics",
    "OutboxStatistics",
    "Routed",
    "Router",
    "chat_of",
    "run_forwarded",
    "serve_gateway",
]
