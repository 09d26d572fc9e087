"""The gateway and the web client.

Owns: the one port that serves the static web client (``web/static/``, plain
HTML, CSS and JavaScript), ``/healthz``, and the WebSocket endpoint ``/ws``
speaking the protocol of docs/protocol.md: token and Origin checks, the frame
limit, a per-connection rate limit, and each connection's watches of chats.
"""

from ._gateway import Gateway, GatewaySettings, serve_gateway

__all__ = ["Gateway", "GatewaySettings", "serve_gateway"]
